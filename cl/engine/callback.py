"""The contract between the engine and the anti-forgetting strategies.

A strategy is a Lightning ``Callback``, so it gets every Lightning hook (``on_train_start``,
``on_test_batch_start``, ``state_dict``/``load_state_dict``, ...). Lightning gives a callback no way to
change the loss or the batch, and knows nothing of tasks, so ``ContinualCallback`` adds the hooks
below, which the engine calls in the order the strategies were given (``strategy=[replay,distill]``).

Hooks:

- ``on_run_start``: once the run is built, before anything trains (after a checkpoint's strategy
  states are loaded, when resuming): raise ``ValueError`` on settings that do not fit the model or
  stream, and rebuild what the strategy adds to the model (adapters) before saved weights load.
- ``train_data``: replace the task's training set (joint training uses the union of seen tasks).
- ``on_task_start`` / ``on_task_end``: around training on each task, with the data it trains on.
- ``extend_batch``: add examples to a training batch (replay), merged with ``stream.merge``.
- ``loss_terms``: the loss is the sum of named terms, starting from ``{"ce": cross-entropy}``;
  a strategy returns them with terms added or reweighted (distillation).
- ``param_groups``: reshape the optimizer's parameter groups (layer-wise learning rates).
- ``predict_proba``: replace the class probabilities used at evaluation (MC dropout).
- ``evaluation_inputs``: every tensor a task's test predictions depend on, when the strategy can
  name them (an isolated adapter's task: the frozen base, its adapter, its head); the loop then skips
  re-scoring a task none of whose tensors changed since its last evaluation (``cl.engine.loop``).
- ``report``: numbers to store with the task's results (memory size, entropy, ...).

What a strategy may use:

- ``module.network.backbone`` (the pretrained transformer; a strategy may wrap it, as peft does)
  and, on classifiers, ``module.network.heads``; parameter names start with ``backbone.`` or ``heads.``.
- ``module.task_id``, ``module.scenario``, ``module.causal_lm``, ``module.cl_callbacks``,
  ``module.class_probs(batch, head)`` (the model's own prediction) and
  ``module.distributions(batch, outputs)``: the logits that form probability distributions over the
  earlier tasks' answers, which spans of the last dimension form one distribution, and which
  positions count (``cl.engine.module.Distributions``).
- ``stream.tasks``, ``stream.task_names``, ``stream.collate(rows)``, ``stream.merge(a, b)``.
- Batch keys (``tasks.batching``): every training batch has ``rows``, each example's position in the
  data its task trains on (after ``train_data``); a strategy that adds examples from a memory sets
  ``slots`` (their places in that memory), and merging fills -1 where a part has none.
- ``ExampleMemory``: a strategy that keeps earlier examples declares it by deriving from it, and
  others find it by type. Distillation and replay cooperate this way: distill computes the teacher's
  logits once per task for every row of the task's data and every slot of the memory, and at each
  step looks up each example of the merged batch by its ``rows`` or ``slots`` entry.
"""

from typing import TYPE_CHECKING

import lightning as L
import torch
from datasets import Dataset

if TYPE_CHECKING:
    from cl.engine.module import ContinualModule
    from tasks.stream import Stream


class ContinualCallback(L.Callback):
    """Base class of strategies; every hook is a no-op by default."""

    def on_run_start(self, module: "ContinualModule", stream: "Stream", completed_tasks: int) -> None:
        """Check settings against the model and stream; rebuild the model additions of ``completed_tasks``."""

    def train_data(self, module: "ContinualModule", task_id: int, stream: "Stream", data: Dataset) -> Dataset:
        return data

    def on_task_start(self, module: "ContinualModule", task_id: int, stream: "Stream", data: Dataset) -> None:
        """Before training on ``task_id``; ``data`` is what it will train on, with a ``row`` column
        (the position of each example, also in every batch as ``rows``)."""

    def on_task_end(self, module: "ContinualModule", task_id: int, stream: "Stream", data: Dataset) -> None:
        """After training on ``task_id``, before it and every other task is evaluated."""

    def extend_batch(self, module: "ContinualModule", batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return batch

    def loss_terms(
        self, module: "ContinualModule", batch: dict, outputs, terms: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return terms

    def param_groups(self, module: "ContinualModule", groups: list[dict]) -> list[dict]:
        return groups

    def predict_proba(self, module: "ContinualModule", batch: dict, head: int) -> torch.Tensor | None:
        return None

    def evaluation_inputs(self, module: "ContinualModule", task_id: int) -> dict[str, torch.Tensor] | None:
        """None: this strategy cannot name them, or its evaluation uses more (a router, random passes)."""
        return None

    def report(self) -> dict[str, float]:
        return {}


class ExampleMemory:
    """Declares that a strategy keeps a memory of earlier examples, as rows ``stream.collate`` takes
    (``input_ids``, ``label``, ``task_id``, and a generative row's ``target_ids``); the ``slots``
    batch key indexes ``memory_examples()``."""

    def memory_examples(self) -> list[dict]:
        raise NotImplementedError
