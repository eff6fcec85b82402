"""Causal language models on the same streams, with each task in generative form.

An example becomes ``instruction + text + "Answer:"`` (the prompt) followed by the label word and
the end-of-sequence token (the answer); training is cross-entropy on the answer tokens only.
Evaluation ranks the task's label words by their log-likelihood after the prompt (``rank``, the
cheap deterministic default) or generates greedily and counts exact matches (``generate``).

Sequences are padded on the left, so every answer ends at the last position: the model computes
its vocabulary-wide logits only there (``logits_to_keep``), not at every prompt token.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cl.module import ContinualModule, Outputs
from tasks.stream import row_fields

ANSWER = "Answer:"


@dataclass
class TaskPrompt:
    """Token ids around each example of one task: ``prefix + text + suffix + answers[label] + [eos]``."""

    prefix: list[int]
    suffix: list[int]
    answers: list[list[int]]


def build_prompts(tasks, specs, tokenizer, scenario: str) -> list[TaskPrompt]:
    """One ``TaskPrompt`` per task. A task spec may set ``instruction`` and ``label_words`` (one word
    per class, default the class names); a model without a tokenizer needs ``answer_ids`` (token ids
    per class) and may set ``prefix_ids``/``suffix_ids``. In the class-incremental scenario every
    task gets the same instruction, naming every class of the stream: the prompt must not give the
    task away."""
    every = [w for t in tasks for w in t.label_names]
    prompts = []
    for task in tasks:
        spec = specs[task.name]
        if tokenizer is None:
            if spec.get("answer_ids") is None:
                raise ValueError(f"task {task.name!r}: a model without a tokenizer needs answer_ids per class")
            answers = [list(a) for a in spec.answer_ids]
            prefix, suffix = list(spec.get("prefix_ids") or []), list(spec.get("suffix_ids") or [])
        else:
            words = list(spec.get("label_words") or task.label_names)
            if scenario == "class":
                instruction = f"Label the text as one of: {', '.join(every)}."
            else:
                instruction = spec.get("instruction") or f"Label the text as one of: {', '.join(words)}."
            encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
            prefix, suffix = encode(f"{instruction}\nText: "), encode(f"\n{ANSWER}")
            answers = [encode(f" {w}") for w in words]
        if len(answers) != task.num_classes or not all(answers) or len(set(map(tuple, answers))) < len(answers):
            raise ValueError(f"task {task.name!r}: needs {task.num_classes} distinct, non-empty answers, got {answers}")
        prompts.append(TaskPrompt(prefix, suffix, answers))
    return prompts


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s) :] = torch.as_tensor(s)
            mask[i, width - len(s) :] = 1
    return ids, mask


def collate(rows: list[dict], prompts: list[TaskPrompt], pad_id: int, eos_id: int) -> dict[str, torch.Tensor]:
    """Prompt and answer of each row, left-padded; ``answer_lengths`` counts the answer with its eos."""
    seqs, answer_lengths = [], []
    for r in rows:
        p = prompts[r["task_id"]]
        answer = [*p.answers[r["label"]], eos_id]
        seqs.append([*p.prefix, *r["input_ids"], *p.suffix, *answer])
        answer_lengths.append(len(answer))
    ids, mask = left_pad(seqs, pad_id)
    lengths = torch.tensor(answer_lengths)
    return {"input_ids": ids, "attention_mask": mask, "answer_lengths": lengths, **row_fields(rows)}


class LanguageModel(nn.Module):
    """A causal LM. It is called ``encoder`` like the classifier's, so that strategies that adapt,
    freeze or decay the pretrained part (lora, freeze, low_lr) work unchanged; it has no heads."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder, self.heads = model, nn.ModuleList()

    def last_logits(self, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
        """Logits at the last ``keep`` positions, ``[batch, keep, vocab]``."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens count from 0
        out = self.encoder(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
        return out.logits[:, -keep:]


class LMModule(ContinualModule):
    """Trains a ``LanguageModel`` on answer tokens and scores it by ranking or generating answers.

    Args (beyond ``ContinualModule``'s):
        prompts: the stream's ``TaskPrompt`` per task.
        evaluation: ``rank`` (label words by log-likelihood) or ``generate`` (greedy, exact match).
        pad_id, eos_id: token ids.
    """

    def __init__(self, network, num_classes, scenario, optimizer, scheduler="linear", warmup_ratio=0.1, *,
                 prompts: list[TaskPrompt], evaluation: str = "rank", pad_id: int = 0, eos_id: int = 0):  # fmt: skip
        super().__init__(network, num_classes, scenario, optimizer, scheduler, warmup_ratio)
        if evaluation not in ("rank", "generate"):
            raise ValueError(f"model.evaluation must be 'rank' or 'generate', got {evaluation!r}")
        self.prompts, self.evaluation, self.pad_id, self.eos_id = prompts, evaluation, pad_id, eos_id
        self.answer_span = max(len(a) for p in prompts for a in p.answers) + 1  # with eos

    def answer_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[batch, A, vocab]``: the logits predicting the last ``A`` tokens (every answer and its eos)."""
        return self.network.last_logits(batch["input_ids"], batch["attention_mask"], self.answer_span + 1)[:, :-1]

    def answer_mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        start = self.answer_span - batch["answer_lengths"].unsqueeze(1)
        return torch.arange(self.answer_span, device=start.device) >= start

    def forward(self, batch: dict[str, torch.Tensor]) -> Outputs:
        return Outputs(self.answer_logits(batch), [])

    def task_loss(self, batch: dict[str, torch.Tensor], out: Outputs) -> torch.Tensor:
        targets = batch["input_ids"][:, -self.answer_span :].masked_fill(~self.answer_mask(batch), -100)
        return F.cross_entropy(out.features.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)

    def candidates(self, head: int) -> list[list[int]]:
        if self.scenario == "task":
            return self.prompts[head].answers
        return [a for p in self.prompts for a in p.answers]

    def prompt_ids(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """Each row's prompt: its real tokens without the answer and eos."""
        out = []
        for ids, mask, n in zip(batch["input_ids"], batch["attention_mask"], batch["answer_lengths"].tolist()):
            out.append(ids[mask.bool()][:-n].tolist())
        return out

    def class_probs(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """Softmax over the candidates' summed answer-token log-likelihoods."""
        answers, prompts = self.candidates(head), self.prompt_ids(batch)
        seqs = [p + a for p in prompts for a in answers]
        ids, mask = (x.to(self.device) for x in left_pad(seqs, self.pad_id))
        span = max(len(a) for a in answers)
        logp = self.network.last_logits(ids, mask, span + 1)[:, :-1].float().log_softmax(-1)
        token_logp = logp.gather(-1, ids[:, -span:].unsqueeze(-1)).squeeze(-1)
        lengths = torch.tensor([len(a) for a in answers] * len(prompts), device=self.device)
        in_answer = torch.arange(span, device=self.device) >= (span - lengths).unsqueeze(1)
        scores = (token_logp * in_answer).sum(-1).view(len(prompts), len(answers))
        return scores.softmax(-1)

    @torch.no_grad()
    def generate_classes(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """Greedy answers; the class whose answer (then eos) they match exactly, else -1."""
        answers = self.candidates(head)
        ids, mask = (x.to(self.device) for x in left_pad(self.prompt_ids(batch), self.pad_id))
        out = self.network.encoder.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max(map(len, answers)) + 1, do_sample=False,
            pad_token_id=self.pad_id, eos_token_id=self.eos_id,
        )[:, ids.shape[1] :].tolist()  # fmt: skip
        index = {tuple(a): c for c, a in enumerate(answers)}
        preds = []
        for tokens in out:
            cut = tokens.index(self.eos_id) if self.eos_id in tokens else len(tokens)
            preds.append(index.get(tuple(tokens[:cut]), -1) if cut < len(tokens) else -1)
        return torch.tensor(preds, device=self.device)

    def predict(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        if self.evaluation == "generate":
            return self.generate_classes(batch, head)
        return super().predict(batch, head)

    def kd_targets(self, batch: dict[str, torch.Tensor], out: Outputs | None = None) -> torch.Tensor:
        """The answer-token logits over the whole vocabulary (the teacher's next-token distributions)."""
        return out.features if out is not None else self.answer_logits(batch)

    def kd_loss(self, batch: dict, student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
        """``KL(softmax(teacher/t) || softmax(student/t))`` per answer token, averaged over answer tokens."""
        kl = F.kl_div(F.log_softmax(student.float() / t, -1), F.log_softmax(teacher.float() / t, -1),
                      log_target=True, reduction="none").sum(-1)  # fmt: skip
        mask = self.answer_mask(batch)
        return (kl * mask).sum() / mask.sum().clamp(min=1)
