"""The LightningModule that trains one network through a stream of tasks."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from transformers import get_scheduler

from cl.callback import ContinualCallback
from cl.network import Classifier


@dataclass
class Group:
    """The rows of a batch that share a head: their index in the batch, logits and head-space labels."""

    head: int
    index: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


@dataclass
class Outputs:
    features: torch.Tensor
    groups: list[Group]


class ContinualModule(L.LightningModule):
    """Cross-entropy training of a ``Classifier`` on the current task, accuracy on every task.

    Args:
        network: the encoder and heads.
        num_classes: classes of each task, in stream order.
        scenario: ``"task"`` (head per task, task id known) or ``"class"`` (one head, labels offset).
        optimizer: a partial taking parameter groups, e.g. ``functools.partial(torch.optim.AdamW, lr=5e-5)``.
        scheduler: ``transformers.get_scheduler`` name (``linear``, ``cosine``, ``constant_with_warmup``...).
        warmup_ratio: share of each task's steps spent warming up.
    """

    def __init__(
        self,
        network: Classifier,
        num_classes: list[int],
        scenario: str,
        optimizer: Callable,
        scheduler: str = "linear",
        warmup_ratio: float = 0.1,
    ):
        super().__init__()
        self.network, self.scenario = network, scenario
        self.optimizer_factory, self.scheduler, self.warmup_ratio = optimizer, scheduler, warmup_ratio
        self.class_offsets = [sum(num_classes[:i]) for i in range(len(num_classes))]
        # Accuracy as the mean of per-example correctness: sums and counts, so exact when summed
        # over processes, and an answer matching no class (generated text) simply counts as wrong.
        self.accuracy = torch.nn.ModuleList(MeanMetric() for _ in num_classes)
        self.task_id = 0
        self.cl_callbacks: list[ContinualCallback] = []  # set by the loop, in strategy order

    def head_of(self, task_id: int) -> int:
        return task_id if self.scenario == "task" else 0

    def head_labels(self, labels: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        if self.scenario == "task":
            return labels
        return labels + torch.as_tensor(self.class_offsets, device=labels.device)[task_ids]

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled features; a merged batch is encoded segment by segment, each trimmed to its own
        longest sequence, so merging costs no extra padding."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if "segments" not in batch:
            return self.network.features(ids, mask)
        parts, start = [], 0
        for n in batch["segments"].tolist():
            width = int(mask[start : start + n].sum(1).max())
            parts.append(self.network.features(ids[start : start + n, :width], mask[start : start + n, :width]))
            start += n
        return torch.cat(parts)

    def forward(self, batch: dict[str, torch.Tensor]) -> Outputs:
        features = self.encode(batch)
        labels = self.head_labels(batch["labels"], batch["task_ids"])
        heads = batch["task_ids"] if self.scenario == "task" else torch.zeros_like(batch["task_ids"])
        groups = []
        for head in heads.unique().tolist():
            index = (heads == head).nonzero().squeeze(1)
            groups.append(Group(head, index, self.network.head_logits(features[index], head), labels[index]))
        return Outputs(features, groups)

    def task_loss(self, batch: dict[str, torch.Tensor], out: Outputs) -> torch.Tensor:
        """Cross-entropy of each example through its own head, averaged over the batch."""
        return sum(F.cross_entropy(g.logits, g.labels, reduction="sum") for g in out.groups) / len(batch["labels"])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        for cb in self.cl_callbacks:
            batch = cb.extend_batch(self, batch)
        out = self(batch)
        n = len(batch["labels"])
        ce = self.task_loss(batch, out)
        terms = {name: t for cb in self.cl_callbacks for name, t in cb.loss_terms(self, batch, out).items()}
        weight = math.prod(cb.ce_weight(self) for cb in self.cl_callbacks)
        loss = weight * ce + sum(terms.values())
        if not torch.isfinite(loss):  # one device sync per step, to stop at the step that broke
            parts = ", ".join(f"{k} {float(v):.4g}" for k, v in {"ce": ce, **terms}.items())
            raise FloatingPointError(
                f"loss is {float(loss)} ({parts}) in task {self.task_id}, epoch {self.current_epoch}, "
                f"step {self.global_step}: try a lower optimizer.lr or gradient clipping (trainer.gradient_clip_val)"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        for name, value in {"ce": ce, **terms}.items():
            self.log(f"train/{name}", value, batch_size=n)
        return loss

    def class_probs(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """The network's class probabilities through ``head`` (strategies may repeat or replace this)."""
        return self.network.head_logits(self.encode(batch), head).softmax(-1)

    def predict_proba(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        for cb in self.cl_callbacks:
            probs = cb.predict_proba(self, batch, head)
            if probs is not None:
                return probs
        return self.class_probs(batch, head)

    def predict(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """Predicted class of each example (head-space ids; -1 for an answer that matches no class)."""
        return self.predict_proba(batch, head).argmax(-1)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        preds = self.predict(batch, self.head_of(dataloader_idx))
        correct = (preds == self.head_labels(batch["labels"], batch["task_ids"])).float()
        metric = self.accuracy[dataloader_idx]
        metric.update(correct)
        self.log(f"eval/task{dataloader_idx}/acc", metric, add_dataloader_idx=False, batch_size=len(preds))

    # Distillation (strategies/distill.py) asks the module what to match, so that it works the same
    # on classifiers (the earlier tasks' heads) and language models (the answer-token distributions).
    def kd_targets(self, batch: dict[str, torch.Tensor], out: Outputs | None = None) -> torch.Tensor:
        """Logits of the earlier tasks' heads (or earlier classes of the single head), side by side."""
        features = out.features if out is not None else self.encode(batch)
        if self.scenario == "class":
            return self.network.head_logits(features, 0)[:, : self.class_offsets[self.task_id]]
        return torch.cat([self.network.head_logits(features, h) for h in range(self.task_id)], -1)

    def kd_loss(self, batch: dict, student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
        """``KL(softmax(teacher/t) || softmax(student/t))`` per earlier head, averaged over heads."""
        if self.scenario == "class":
            spans = [(0, self.class_offsets[self.task_id])]
        else:
            spans = [(self.class_offsets[h], self.class_offsets[h + 1]) for h in range(self.task_id)]
        kl = [
            F.kl_div(F.log_softmax(student[:, a:b] / t, -1), F.log_softmax(teacher[:, a:b] / t, -1),
                     log_target=True, reduction="batchmean")
            for a, b in spans
        ]  # fmt: skip
        return sum(kl) / len(kl)

    def configure_optimizers(self):
        groups = [{"params": [p for p in self.parameters() if p.requires_grad]}]
        for cb in self.cl_callbacks:
            groups = cb.param_groups(self, groups)
        optimizer = self.optimizer_factory(groups)
        steps = int(self.trainer.estimated_stepping_batches)
        warmup = int(self.warmup_ratio * steps)
        schedule = get_scheduler(self.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
