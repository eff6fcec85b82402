"""Causal language models on the same streams, with each task in generative form.

An example becomes ``instruction + text + "Answer:"`` (the prompt) followed by the label word and
the end-of-sequence token (the answer); training is cross-entropy on the answer tokens only.
Evaluation ranks the task's label words by their log-likelihood after the prompt (``rank``, the
cheap deterministic default) or generates greedily and counts exact matches (``generate``).

Sequences are padded on the left, so every answer ends at the last position: the model computes
its vocabulary-wide logits only there (``logits_to_keep``), not at every prompt token. Prompts and
batches are built by the data layer (``tasks.prompts``, ``tasks.batching.PromptAnswer``).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from transformers import AutoModelForCausalLM

from cl.engine.module import ContinualModule, Distributions
from tasks.batching import PromptAnswer, pad
from tasks.prompts import TaskPrompt, build_prompts


class CausalLM(nn.Module):
    """A pretrained decoder as the ``backbone`` (the name every family gives its pretrained part, so
    that strategies that adapt, freeze or decay it work unchanged); answers are its own tokens, so it
    has no heads."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

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

    @staticmethod
    def batching(tasks, stream_cfg: DictConfig, tokenizer, backbone) -> PromptAnswer:
        prompts = build_prompts(tasks, stream_cfg.tasks, tokenizer, stream_cfg.get("scenario", "task"))
        eos = getattr(tokenizer, "eos_token_id", None)
        eos = eos if eos is not None else backbone.config.eos_token_id
        return PromptAnswer(prompts, getattr(tokenizer, "pad_token_id", None) or 0, eos)

    @classmethod
    def from_config(cls, cfg: DictConfig, backbone: nn.Module, stream, optimizer, **schedule) -> "CausalLMModule":
        batches = stream.collate
        return cls(CausalLM(backbone), [t.num_classes for t in stream.tasks], stream.scenario, optimizer, **schedule,
                   prompts=batches.prompts, evaluation=cfg.get("evaluation", "rank"), pad_id=batches.pad_id,
                   eos_id=batches.eos_id)  # fmt: skip

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

    def forward(self, batch: dict[str, torch.Tensor]) -> AnswerLogits:
        return AnswerLogits(self.answer_logits(batch))

    def task_loss(self, batch: dict[str, torch.Tensor], out: AnswerLogits) -> torch.Tensor:
        """Cross-entropy of the answer tokens (and eos) only, averaged over them."""
        targets = batch["input_ids"][:, -self.answer_span :].masked_fill(~self.answer_mask(batch), -100)
        return F.cross_entropy(out.logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)

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
        ids, mask = (x.to(self.device) for x in pad(seqs, self.pad_id, "left"))
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
        ids, mask = (x.to(self.device) for x in pad(self.prompt_ids(batch), self.pad_id, "left"))
        out = self.network.backbone.generate(
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

    def distributions(self, batch: dict[str, torch.Tensor], outputs: AnswerLogits | None = None) -> Distributions:
        """The next-token distribution over the whole vocabulary at every answer token (and eos)."""
        logits = outputs.logits if outputs is not None else self.answer_logits(batch)
        return Distributions(logits, [(0, logits.shape[-1])], self.answer_mask(batch))
