"""Turning rows of a task into batches: padding on either side, merging two batches, and the fields
every batch carries besides its tokens.

A stream is given one collate when it is built: ``PaddedText`` for encoders (the text alone, padded
on the right) or ``PromptAnswer`` for causal language models (prompt, text and answer, padded on the
left so that every answer ends at the last position).
"""

import torch

from tasks.prompts import TaskPrompt

# Batch keys besides input_ids/attention_mask. ``rows``: each training example's position in the data
# its task trains on; ``slots``: a replayed example's place in a strategy's example memory (-1 where
# a batch part has none); ``segments``: the sizes of the parts of a merged batch.
ROWS, SLOTS, SEGMENTS = "rows", "slots", "segments"


def pad(seqs: list, pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, padded to the longest sequence on ``side`` (``right`` or ``left``)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            span = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
            ids[i, span] = torch.as_tensor(s)
            mask[i, span] = 1
    return ids, mask


def row_fields(rows: list[dict]) -> dict[str, torch.Tensor]:
    """What every batch carries besides its tokens: labels, task ids, and row positions if given."""
    fields = {
        "labels": torch.tensor([r["label"] for r in rows]),
        "task_ids": torch.tensor([r["task_id"] for r in rows]),
    }
    if "row" in rows[0]:
        fields[ROWS] = torch.tensor([r["row"] for r in rows])
    return fields


class PaddedText:
    """An encoder's batches: each row's tokens, padded on the right to the batch's longest (dynamic padding)."""

    side = "right"

    def __init__(self, pad_id: int = 0):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        ids, mask = pad([r["input_ids"] for r in rows], self.pad_id, self.side)
        return {"input_ids": ids, "attention_mask": mask, **row_fields(rows)}


class PromptAnswer:
    """A causal LM's batches: ``prefix + text + suffix + answer + eos`` per row (the task's
    ``TaskPrompt``; the answer is the label word, or a generative row's ``target_ids``), padded on
    the left; ``answer_lengths`` counts each answer with its eos."""

    side = "left"

    def __init__(self, prompts: list[TaskPrompt], pad_id: int, eos_id: int):
        self.prompts, self.pad_id, self.eos_id = prompts, pad_id, eos_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        seqs, answer_lengths = [], []
        for r in rows:
            p = self.prompts[r["task_id"]]
            if p.kind == "perplexity":  # the text alone, every token scored
                seqs.append(list(r["input_ids"]))
                answer_lengths.append(0)
                continue
            answer = [*(r["target_ids"] if p.generative else p.answers[r["label"]]), self.eos_id]
            seqs.append([*p.prefix, *r["input_ids"], *p.suffix, *answer])
            answer_lengths.append(len(answer))
        ids, mask = pad(seqs, self.pad_id, self.side)
        lengths = torch.tensor(answer_lengths)
        return {"input_ids": ids, "attention_mask": mask, "answer_lengths": lengths, **row_fields(rows)}


def merge(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], pad_id: int, side: str) -> dict[str, torch.Tensor]:
    """One batch of two. ``segments`` keeps the two parts' sizes so that each is encoded padded only
    to its own longest sequence (short current examples are not padded up to long replayed ones); a
    key only one side has (``rows``, ``slots``) is filled with -1 on the other."""
    width = max(a["input_ids"].shape[1], b["input_ids"].shape[1])

    def part(batch: dict, key: str) -> torch.Tensor:
        if key == SEGMENTS:
            return batch.get(SEGMENTS, torch.tensor([len(batch["labels"])], device=batch["labels"].device))
        other = b if batch is a else a
        if key not in batch:
            return torch.full((len(batch["labels"]),), -1, dtype=other[key].dtype, device=other[key].device)
        x = batch[key]
        if key in ("input_ids", "attention_mask") and x.shape[1] < width:
            fill = pad_id if key == "input_ids" else 0
            widths = (width - x.shape[1], 0) if side == "left" else (0, width - x.shape[1])
            x = torch.nn.functional.pad(x, widths, value=fill)
        return x

    return {k: torch.cat([part(a, k), part(b, k)]) for k in dict.fromkeys([*a, *b, SEGMENTS])}
