"""Per-task model selection and early stopping on the current task's validation split.

With ``selection.monitor=true`` each task's Trainer scores the task being trained on its validation
split (held out of its training data: ``stream.validation_fraction``) after every epoch, or every
``selection.val_check_interval`` of one. Lightning's own ``ModelCheckpoint`` keeps the weights of the
best score, which the loop restores when the task ends (before the strategies' ``on_task_end``, so an
adapter or a teacher is taken from the chosen weights), and Lightning's ``EarlyStopping`` ends the task
after ``selection.patience`` validations without an improvement of ``selection.min_delta``. The test
split is never read. Each task's curve of validation scores goes into the results (``validation``),
so a reader can see whether a task converged.
"""

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig
from typing_extensions import override

KEY = "val/score"  # the current task's score (accuracy, ROUGE-L, ...) on its validation split
FOLDER = "selection"


@dataclass
class SelectionSettings:
    monitor: bool = False
    patience: int | None = None  # validations without improvement before a task stops; None: never
    min_delta: float = 0.0
    val_check_interval: float | None = None  # share of an epoch between validations; None: once an epoch

    @classmethod
    def from_config(cls, node: DictConfig | None) -> "SelectionSettings":
        return cls(**(node or {}))


class ValidationCurve(L.Callback):
    """The monitored score at every validation of the task, kept with the mid-task checkpoints."""

    def __init__(self):
        self.scores: list[float] = []

    @override
    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.scores.append(round(float(trainer.callback_metrics[KEY]), 6))

    @override
    def state_dict(self) -> dict:
        return {"scores": self.scores}

    @override
    def load_state_dict(self, state: dict) -> None:
        self.scores = list(state["scores"])


def callbacks(out_dir: str | Path, task_id: int, settings: SelectionSettings) -> list[L.Callback]:
    """The curve, Lightning's best-score checkpoint (weights only) and, with a patience, early stopping."""
    saver = ModelCheckpoint(
        dirpath=Path(out_dir) / FOLDER, filename=f"task{task_id}", monitor=KEY, mode="max", save_top_k=1,
        save_weights_only=True, enable_version_counter=False, save_on_train_epoch_end=False,
    )  # fmt: skip
    found = [ValidationCurve(), saver]
    if settings.patience is not None:
        found.append(EarlyStopping(monitor=KEY, mode="max", patience=settings.patience, min_delta=settings.min_delta))
    return found


def restore_best(module: L.LightningModule, found: list[L.Callback], trainer: L.Trainer) -> dict:
    """Load the best validation score's weights into ``module``, delete their file, and say what was
    chosen: the curve, the chosen validation's index in it, the epochs trained."""
    curve = next(c for c in found if isinstance(c, ValidationCurve))
    saver = next(c for c in found if isinstance(c, ModelCheckpoint))
    chosen = None
    if saver.best_model_path:
        # Lightning's checkpoint holds the weights and loop counters only (save_weights_only).
        state = torch.load(saver.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
        Path(saver.best_model_path).unlink(missing_ok=True)
        # A tie does not replace the kept checkpoint (Lightning compares strictly), so the first best.
        chosen = curve.scores.index(max(curve.scores))
    return {"curve": curve.scores, "chosen": chosen, "epochs": trainer.current_epoch}
