"""Causal language models on the same streams, with each task in generative form.

An example becomes ``instruction + text + "Answer:"`` (the prompt) followed by the label word and
the end-of-sequence token (the answer); training is cross-entropy on the answer tokens only.
Evaluation ranks the task's label words by their log-likelihood after the prompt (``rank``, the
cheap deterministic default) or generates greedily and counts exact matches (``generate``).

Sequences are padded on the left, so every answer ends at the last position: the model computes
its vocabulary-wide logits only there (``logits_to_keep``), not at every prompt token. Prompts and
batches are built by the data layer (``tasks.prompts``, ``tasks.batching.PromptAnswer``).
"""

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from torchmetrics.text import Perplexity
from transformers import AutoModelForCausalLM

from cl.engine import selection
from cl.engine.module import ContinualModule, Distributions
from cl.models.scores import make_metric, update
from tasks.batching import PromptAnswer, pad
from tasks.prompts import TaskPrompt, build_prompts


class CausalLM(nn.Module):
    """A pretrained decoder as the ``backbone`` (the name every family gives its pretrained part, so
    that strategies that adapt, freeze or decay it work unchanged); answers are its own tokens, so it
    has no heads."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        # transformers 5.x names a forward's KV cache `cache` (`past_key_values` before, then deprecated).
        forward = inspect.signature(type(backbone).forward).parameters
        self.cache_argument = "cache" if "cache" in forward else "past_key_values"

    def returned_cache(self, out):
        """The KV cache a forward returned (``cache`` in transformers 5.x, ``past_key_values`` before)."""
        return out.cache if getattr(out, "cache", None) is not None else out.past_key_values

    def last_logits(self, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
        """Logits at the last ``keep`` positions, ``[batch, keep, vocab]``."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens count from 0
        out = self.backbone(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
        return out.logits[:, -keep:]


@dataclass
class AnswerLogits:
    """``logits[b, a]`` predicts the ``a``-th of the last ``A`` tokens of row ``b`` (the answer span)."""

    logits: torch.Tensor


class CausalLMModule(ContinualModule):
    """Trains a ``CausalLM`` on answer tokens and scores it by ranking or generating answers.

    Args (beyond ``ContinualModule``'s):
        prompts: the stream's ``TaskPrompt`` per task.
        evaluation: ``rank`` (label words by log-likelihood) or ``generate`` (greedy, exact match).
        pad_id, eos_id: token ids.
    """

    causal_lm = True
    auto_model = AutoModelForCausalLM
    share_prefix = True  # ranking computes a task's common prompt prefix once per batch (see prompt_cache)

    @staticmethod
    def batching(tasks, probes, stream_cfg: DictConfig, tokenizer, backbone) -> PromptAnswer:
        template, scenario = stream_cfg.get("template", "plain"), stream_cfg.get("scenario", "task")
        general = {**(stream_cfg.get("general") or {}), **(stream_cfg.get("rehearsal") or {})}  # probes, then rehearsal
        prompts = build_prompts(tasks, stream_cfg.tasks, tokenizer, scenario, template, probes, general)
        eos = getattr(tokenizer, "eos_token_id", None)
        eos = eos if eos is not None else backbone.config.eos_token_id
        return PromptAnswer(prompts, getattr(tokenizer, "pad_token_id", None) or 0, eos)

    @classmethod
    def from_config(cls, cfg: DictConfig, backbone: nn.Module, tokenizer, stream, optimizer,
                    **schedule) -> "CausalLMModule":  # fmt: skip
        batches, everything = stream.collate, [*stream.tasks, *stream.probes]
        generative = [t for t in [*everything, *stream.rehearsal] if t.kind == "generate"]
        splits = [split for t in generative for split in (t.train, t.test) if len(split)]  # a probe: no training split
        longest = max((len(x) for split in splits for x in split["target_ids"]), default=0)
        decode = (lambda ids: tokenizer.decode(ids, skip_special_tokens=True)) if tokenizer else None
        return cls(CausalLM(backbone), [t.num_classes for t in stream.tasks], stream.scenario, optimizer, **schedule,
                   prompts=batches.prompts, evaluation=cfg.get("evaluation", "rank"), pad_id=batches.pad_id,
                   eos_id=batches.eos_id, scores=[t.score for t in everything], longest_target=longest,
                   max_new_tokens=[t.max_new_tokens for t in everything], decode=decode)  # fmt: skip

    def __init__(self, network, num_classes, scenario, optimizer, scheduler="linear", warmup_ratio=0.1, *,
                 prompts: list[TaskPrompt], evaluation: str = "rank", pad_id: int = 0, eos_id: int = 0,
                 scores: list | None = None, longest_target: int = 0, max_new_tokens: list[int] | None = None,
                 decode=None, samples_per_task: int = 3):  # fmt: skip
        super().__init__(network, num_classes, scenario, optimizer, scheduler, warmup_ratio)
        if evaluation not in ("rank", "generate"):
            raise ValueError(f"model.evaluation must be 'rank' or 'generate', got {evaluation!r}")
        self.prompts, self.evaluation, self.pad_id, self.eos_id = prompts, evaluation, pad_id, eos_id
        longest_answer = max((len(a) for p in prompts for a in p.answers), default=0)
        self.answer_span = max(longest_answer, longest_target) + 1  # with eos
        # Prompts, scores and metrics cover the tasks, then the general-ability probes.
        self.num_tasks, self.scores = len(num_classes), scores or ["accuracy"] * len(prompts)
        for j, (p, score) in enumerate(zip(prompts, self.scores)):
            metric = Perplexity(ignore_index=-100) if p.kind == "perplexity" else make_metric(score)
            if j >= self.num_tasks:
                self.accuracy.append(metric)
            elif p.generative:
                self.accuracy[j] = metric
        self.max_new_tokens = max_new_tokens or [32] * len(prompts)
        # Without a tokenizer (tiny test models) texts are the token ids, space-separated.
        self.decode = decode or (lambda ids: " ".join(map(str, ids)))
        self.samples_per_task, self.samples = samples_per_task, {}

    def answer_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[batch, A, vocab]``: the logits predicting the last ``A`` tokens (every answer and its eos)."""
        return self.network.last_logits(batch["input_ids"], batch["attention_mask"], self.answer_span + 1)[:, :-1]

    def answer_mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        start = self.answer_span - batch["answer_lengths"].unsqueeze(1)
        return torch.arange(self.answer_span, device=start.device) >= start

    def forward(self, batch: dict[str, torch.Tensor]) -> AnswerLogits:
        return AnswerLogits(self.answer_logits(batch))

    def task_loss(self, batch: dict[str, torch.Tensor], out: AnswerLogits) -> torch.Tensor:
        """Cross-entropy of the answer tokens (and eos) only, averaged over them."""
        targets = batch["input_ids"][:, -self.answer_span :].masked_fill(~self.answer_mask(batch), -100)
        return F.cross_entropy(out.logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)

    def candidates(self, head: int) -> list[list[int]]:
        if self.scenario == "task" or head >= self.num_tasks:  # a probe is scored among its own answers
            return self.prompts[head].answers
        return [a for p in self.prompts for a in p.answers]

    def prompt_ids(self, batch: dict[str, torch.Tensor]) -> list[list[int]]:
        """Each row's prompt: its real tokens without the answer and eos."""
        out = []
        for ids, mask, n in zip(batch["input_ids"], batch["attention_mask"], batch["answer_lengths"].tolist()):
            out.append(ids[mask.bool()][:-n].tolist())
        return out

    def class_probs(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """Softmax over the candidates' summed answer-token log-likelihoods. The task's prompt prefix
        (chat template and instruction, the same in every row) is computed once per batch and the
        rest of each prompt once per row, their KV cache shared by every candidate (answers are a
        few tokens, prompts long); prompt learning methods, which rewrite the cache themselves,
        score each prompt + answer in full."""
        answers, prompts = self.candidates(head), self.prompt_ids(batch)
        peft_config = getattr(self.network.backbone, "active_peft_config", None)
        if getattr(peft_config, "is_prompt_learning", False):
            return self.class_probs_in_full(prompts, answers)
        prefix = self.prompts[int(batch["task_ids"][0])].prefix if self.share_prefix else []
        cache, mask, positions, next_logp = self.prompt_cache(prompts, prefix)
        scores = next_logp[:, [a[0] for a in answers]]  # every answer's first token
        tail = max(len(a) for a in answers) - 1
        if tail == 0:  # one-token answers: the prompt's last position scores them all
            return scores.softmax(-1)
        # The rest of each answer, every candidate a row of its own over the shared prompt cache.
        k, rows = len(answers), len(prompts)
        cache.batch_repeat_interleave(k)
        given = torch.tensor([a[:-1] + [self.pad_id] * (tail + 1 - len(a)) for a in answers], device=self.device)
        wanted = torch.tensor([a[1:] + [0] * (tail + 1 - len(a)) for a in answers], device=self.device)
        real = torch.tensor([[i < len(a) - 1 for i in range(tail)] for a in answers], device=self.device)
        steps = torch.arange(1, tail + 1, device=self.device)
        logits = self.network.backbone(
            input_ids=given.repeat(rows, 1), **{self.network.cache_argument: cache}, use_cache=True,
            attention_mask=torch.cat([mask.repeat_interleave(k, 0), real.long().repeat(rows, 1)], 1),
            position_ids=positions[:, -1:].repeat_interleave(k, 0) + steps,
        ).logits.float().log_softmax(-1)  # fmt: skip
        rest = logits.gather(-1, wanted.repeat(rows, 1).unsqueeze(-1)).squeeze(-1) * real.repeat(rows, 1)
        return (scores + rest.sum(-1).view(rows, k)).softmax(-1)

    def prompt_cache(self, prompts: list[list[int]], prefix: list[int]):
        """The KV cache of a batch of prompts, its attention mask and positions, and the next-token
        log-probabilities after each prompt. When every prompt starts
        with ``prefix``, the prefix is computed once and the rows continue from it, padded between
        prefix and text (``prefix | pads | rest``; masks and positions skip the pads)."""
        n = len(prefix) if prefix and all(p[: len(prefix)] == prefix and len(p) > len(prefix) for p in prompts) else 0
        cache, shared = None, torch.ones(len(prompts), n, dtype=torch.long, device=self.device)
        if n:
            ids = torch.tensor([prefix], device=self.device)
            out = self.network.backbone(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache = self.network.returned_cache(out)
            cache.batch_repeat_interleave(len(prompts))
        ids, mask = (x.to(self.device) for x in pad([p[n:] for p in prompts], self.pad_id, "left"))
        mask = torch.cat([shared, mask], 1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        extra = {self.network.cache_argument: cache} if cache is not None else {}
        out = self.network.backbone(input_ids=ids, attention_mask=mask, position_ids=positions[:, n:], use_cache=True,
                                    logits_to_keep=1, **extra)  # fmt: skip
        cache = self.network.returned_cache(out)
        return cache, mask, positions, out.logits[:, -1].float().log_softmax(-1)

    def class_probs_in_full(self, prompts: list[list[int]], answers: list[list[int]]) -> torch.Tensor:
        seqs = [p + a for p in prompts for a in answers]
        ids, mask = (x.to(self.device) for x in pad(seqs, self.pad_id, "left"))
        span = max(len(a) for a in answers)
        logp = self.network.last_logits(ids, mask, span + 1)[:, :-1].float().log_softmax(-1)
        token_logp = logp.gather(-1, ids[:, -span:].unsqueeze(-1)).squeeze(-1)
        lengths = torch.tensor([len(a) for a in answers] * len(prompts), device=self.device)
        in_answer = torch.arange(span, device=self.device) >= (span - lengths).unsqueeze(1)
        scores = (token_logp * in_answer).sum(-1).view(len(prompts), len(answers))
        return scores.softmax(-1)

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, cut: bool = True) -> list[list[int] | None]:
        """Greedy continuations of a batch of prompts (left-padded, with the KV cache), each cut
        before its first eos (``None`` for one that never ended; ``cut=False``: every token)."""
        ids, mask = (x.to(self.device) for x in pad(prompts, self.pad_id, "left"))
        out = self.network.backbone.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
            pad_token_id=self.pad_id, eos_token_id=self.eos_id,
        )[:, ids.shape[1] :].tolist()  # fmt: skip
        if not cut:
            return out
        return [tokens[: tokens.index(self.eos_id)] if self.eos_id in tokens else None for tokens in out]

    def generate_classes(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """Greedy answers; the class whose answer (then eos) they match exactly, else -1."""
        answers = self.candidates(head)
        index = {tuple(a): c for c, a in enumerate(answers)}
        outs = self.generate(self.prompt_ids(batch), max(map(len, answers)) + 1)
        return torch.tensor([-1 if o is None else index.get(tuple(o), -1) for o in outs], device=self.device)

    def route_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The last layer's hidden states averaged over each row's prompt (its answer left out)."""
        prompts = self.prompt_ids(batch)
        width = max(map(len, prompts))
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.network.backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                                    output_hidden_states=True)  # fmt: skip
        weights = mask.unsqueeze(-1).to(out.hidden_states[-1].dtype)
        return (out.hidden_states[-1] * weights).sum(1) / weights.sum(1)

    def on_test_epoch_start(self) -> None:
        self.samples = {}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        j, kind = dataloader_idx, self.prompts[dataloader_idx].kind
        if kind == "perplexity":
            return self.perplexity_step(batch, j)
        if kind == "classify" and j >= self.num_tasks:  # a probe: its own labels, its own answers
            correct = (self.predict(batch, j) == batch["labels"]).float()
            self.accuracy[j].update(correct)
            self.log(self.score_key(j), self.accuracy[j], add_dataloader_idx=False, batch_size=len(correct))
            return None
        if kind == "classify":
            return super().test_step(batch, batch_idx, dataloader_idx)
        prompts = self.prompt_ids(batch)
        refs = [ids[mask.bool()][-n:-1].tolist() for ids, mask, n in
                zip(batch["input_ids"], batch["attention_mask"], batch["answer_lengths"].tolist())]  # fmt: skip
        outs = self.generate(prompts, self.max_new_tokens[j])
        preds = [self.decode(o if o is not None else []) for o in outs]
        references = [self.decode(r) for r in refs]
        update(self.accuracy[j], self.scores[j], preds, references)
        key = self.score_key(j)
        self.log(key, self.accuracy[j], add_dataloader_idx=False, batch_size=len(preds))
        if key == selection.KEY:  # samples are kept from the matrix's evaluations only
            return
        kept = self.samples.setdefault(j, [])
        for p, ref, out in list(zip(prompts, references, preds))[: self.samples_per_task - len(kept)]:
            kept.append({"prompt": self.decode(p), "reference": ref, "output": out})

    def predict(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        if self.evaluation == "generate":
            return self.generate_classes(batch, head)
        return super().predict(batch, head)

    def perplexity_step(self, batch: dict[str, torch.Tensor], j: int, logits_budget: int = 2**25) -> None:
        """Perplexity of the probe's texts: every token predicted from the real ones before it. Rows
        go through in chunks whose vocabulary-wide logits stay under ``logits_budget`` elements
        (128 MB in fp32): a whole batch's would be 16 x 128 x 49k for SmolLM2, and grows with the
        vocabulary (Llama 3: 128k) and the text length; the metric sums over chunks exactly."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        rows = max(1, logits_budget // (ids.shape[1] * self.network.backbone.config.vocab_size))
        for start in range(0, len(ids), rows):
            part_ids, part_mask = ids[start : start + rows], mask[start : start + rows]
            positions = (part_mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens count from 0
            out = self.network.backbone(input_ids=part_ids, attention_mask=part_mask, position_ids=positions)
            scored = (part_mask[:, :-1] * part_mask[:, 1:]).bool()  # a real token predicted from a real token
            self.accuracy[j].update(out.logits[:, :-1].float(), part_ids[:, 1:].masked_fill(~scored, -100))
        self.log(self.score_key(j), self.accuracy[j], add_dataloader_idx=False, batch_size=len(ids))

    def distributions(self, batch: dict[str, torch.Tensor], outputs: AnswerLogits | None = None) -> Distributions:
        """The next-token distribution over the whole vocabulary at every answer token (and eos)."""
        logits = outputs.logits if outputs is not None else self.answer_logits(batch)
        return Distributions(logits, [(0, logits.shape[-1])], self.answer_mask(batch))
