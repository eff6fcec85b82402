"""The LightningModule base that trains one network through a stream of tasks.

It holds what every model family shares: the training step (strategy hooks, loss terms, the
finite-loss check), the test step (per-task accuracy), and the optimizer and schedule. A family
(``cl.models.classifier``, ``cl.models.causal_lm``) says how to compute its outputs, its task loss,
its class probabilities and the distributions a distillation matches.
"""

from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch
from torchmetrics import MeanMetric
from transformers import get_scheduler

from cl.engine import selection


@dataclass
class Distributions:
    """Logits that form probability distributions over the earlier tasks' answers.

    ``logits[..., a:b]`` is one distribution for each ``(a, b)`` in ``spans``; ``mask`` (shaped like
    ``logits.shape[:-1]``) marks the positions that count, ``None``: each row is one position.
    """

    logits: torch.Tensor
    spans: list[tuple[int, int]]
    mask: torch.Tensor | None = None


class ContinualModule(L.LightningModule):
    """Trains a network on the current task and scores it on every task.

    Args:
        network: the pretrained ``backbone`` and whatever the family adds (heads).
        num_classes: classes of each task, in stream order.
        scenario: ``"task"`` (head per task, task id known) or ``"class"`` (one head, labels offset).
        optimizer: a partial taking parameter groups, e.g. ``functools.partial(torch.optim.AdamW, lr=5e-5)``.
        scheduler: ``transformers.get_scheduler`` name (``linear``, ``cosine``, ``constant_with_warmup``...).
        warmup_ratio: share of each task's steps spent warming up.
    """

    causal_lm = False  # language models score answers as text; some strategies need to know

    def __init__(
        self,
        network: torch.nn.Module,
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
        self.cl_callbacks: list = []  # the ContinualCallbacks, set when the run is built, in strategy order

    # What a model family provides.
    def forward(self, batch: dict[str, torch.Tensor]):
        raise NotImplementedError

    def task_loss(self, batch: dict[str, torch.Tensor], outputs) -> torch.Tensor:
        raise NotImplementedError

    def class_probs(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """The network's class probabilities through ``head`` (strategies may repeat or replace this)."""
        raise NotImplementedError

    def distributions(self, batch: dict[str, torch.Tensor], outputs=None) -> Distributions:
        """What a distillation matches, from ``outputs`` of this batch if given."""
        raise NotImplementedError

    def route_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One vector per row describing the input (never its answer), for routing to a task."""
        raise NotImplementedError

    # Shared.
    def head_of(self, task_id: int) -> int:
        return task_id if self.scenario == "task" else 0

    def head_labels(self, labels: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        if self.scenario == "task":
            return labels
        return labels + torch.as_tensor(self.class_offsets, device=labels.device)[task_ids]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        for cb in self.cl_callbacks:
            batch = cb.extend_batch(self, batch)
        out = self(batch)
        n = len(batch["labels"])
        ce = self.task_loss(batch, out)
        terms = {"ce": ce}
        for cb in self.cl_callbacks:
            terms = cb.loss_terms(self, batch, out, terms)
        loss = sum(terms.values())
        named = {"ce": ce, **{k: v for k, v in terms.items() if k != "ce"}}  # ce unweighted
        if not torch.isfinite(loss):  # one device sync per step, to stop at the step that broke
            parts = ", ".join(f"{k} {float(v):.4g}" for k, v in named.items())
            raise FloatingPointError(
                f"loss is {float(loss)} ({parts}) in task {self.task_id}, epoch {self.current_epoch}, "
                f"step {self.global_step}: try a lower optimizer.lr or gradient clipping (trainer.gradient_clip_val)"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        for name, value in named.items():
            self.log(f"train/{name}", value, batch_size=n)
        return loss

    def predict_proba(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        for cb in self.cl_callbacks:
            probs = cb.predict_proba(self, batch, head)
            if probs is not None:
                return probs
        return self.class_probs(batch, head)

    def predict(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        """Predicted class of each example (head-space ids; -1 for an answer that matches no class)."""
        return self.predict_proba(batch, head).argmax(-1)

    def score_key(self, j: int) -> str:
        """Where task ``j``'s score is logged: the matrix's ``eval/task<j>/acc``, or while training
        validates the current task, the score per-task model selection monitors."""
        validating = self._trainer is not None and self._trainer.validating
        return selection.KEY if validating else f"eval/task{j}/acc"

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        preds = self.predict(batch, self.head_of(dataloader_idx))
        correct = (preds == self.head_labels(batch["labels"], batch["task_ids"])).float()
        metric = self.accuracy[dataloader_idx]
        metric.update(correct)
        self.log(self.score_key(dataloader_idx), metric, add_dataloader_idx=False, batch_size=len(preds))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """The task being trained, scored on its validation split (``cl.engine.selection``)."""
        self.test_step(batch, batch_idx, self.task_id)

    def configure_optimizers(self):
        groups = [{"params": [p for p in self.parameters() if p.requires_grad]}]
        for cb in self.cl_callbacks:
            groups = cb.param_groups(self, groups)
        optimizer = self.optimizer_factory(groups)
        steps = int(self.trainer.estimated_stepping_batches)
        warmup = int(self.warmup_ratio * steps)
        schedule = get_scheduler(self.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
