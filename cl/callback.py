"""The contract between the engine and the anti-forgetting strategies.

A strategy is a Lightning ``Callback``, so it gets every Lightning hook (``on_train_batch_end``,
``state_dict``/``load_state_dict``, ...). Lightning gives a callback no way to change the loss or the
batch, and knows nothing of tasks, so ``ContinualCallback`` adds a few hooks that the engine calls:

- ``train_data``: replace the task's training set (joint training uses the union of seen tasks).
- ``on_task_start`` / ``on_task_end``: around training on each task, with the data it trains on.
- ``extend_batch``: add examples to a training batch (replay).
- ``loss_terms``: extra named loss terms added to the cross-entropy (distillation).
- ``ce_weight``: a factor on the cross-entropy itself (``alpha`` in ``alpha*CE + (1-alpha)*KD``).
- ``param_groups``: reshape the optimizer's parameter groups (layer-wise learning rates).
- ``predict_proba``: replace the class probabilities used at evaluation (MC dropout).
- ``check``: fail before any training on settings that do not fit the model or stream.
- ``on_resume``: rebuild what the strategy added to the model (adapters) before a checkpoint loads.
- ``report``: numbers to store with the task's results (buffer size, entropy, ...).
"""

from typing import TYPE_CHECKING

import lightning as L
import torch
from datasets import Dataset

if TYPE_CHECKING:
    from cl.module import ContinualModule, Outputs
    from tasks.stream import Stream


class ContinualCallback(L.Callback):
    """Base class of strategies; every hook is a no-op by default."""

    def check(self, module: "ContinualModule", stream: "Stream") -> None:
        """Raise ``ValueError`` naming the problem and its fix; called once the run is built."""

    def on_resume(self, module: "ContinualModule", stream: "Stream", completed_tasks: int) -> None:
        """After ``load_state_dict``, before the model's checkpointed weights are loaded."""

    def train_data(self, module: "ContinualModule", task_id: int, stream: "Stream", data: Dataset) -> Dataset:
        return data

    def on_task_start(self, module: "ContinualModule", task_id: int, stream: "Stream", data: Dataset) -> None:
        """Before training on ``task_id``; ``data`` is what it will train on, with a ``row`` column
        (the position of each example, also in every batch as ``rows``)."""

    def on_task_end(self, module: "ContinualModule", task_id: int, stream: "Stream", data: Dataset) -> None:
        """After training on ``task_id``, before it and every other task is evaluated."""

    def extend_batch(self, module: "ContinualModule", batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return batch

    def loss_terms(self, module: "ContinualModule", batch: dict, outputs: "Outputs") -> dict[str, torch.Tensor]:
        return {}

    def ce_weight(self, module: "ContinualModule") -> float:
        return 1.0

    def param_groups(self, module: "ContinualModule", groups: list[dict]) -> list[dict]:
        return groups

    def predict_proba(self, module: "ContinualModule", batch: dict, head: int) -> torch.Tensor | None:
        return None

    def report(self) -> dict[str, float]:
        return {}
