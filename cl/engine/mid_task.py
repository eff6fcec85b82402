"""Checkpoints within a task, so that a preempted run loses minutes, not a whole task.

Lightning's own ``ModelCheckpoint`` writes them (every N steps or minutes) with everything Lightning
restores on ``fit(ckpt_path=...)``: weights, optimizer, schedule, loop progress and every callback's
``state_dict`` (the strategies' states). ``MidTaskState`` adds what Lightning does not keep: the
global RNG states (dropout draws from them) and where the epoch's shuffled order stood, so that a
resumed task trains on exactly the batches, in exactly the order, an uninterrupted one would.
The loop deletes a task's mid-task checkpoint once the task-boundary checkpoint is written.
"""

from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from typing_extensions import override

from cl.engine import checkpoint

FOLDER = "mid_task"


def path(out_dir: str | Path, task_id: int) -> Path:
    return Path(out_dir) / FOLDER / f"task{task_id}.ckpt"


def callbacks(out_dir: str | Path, task_id: int, every_n_steps: int | None, every_minutes: float | None, loader):
    """Lightning's checkpointing callback for this task, and the state it needs beside it."""
    saver = ModelCheckpoint(
        dirpath=Path(out_dir) / FOLDER, filename=f"task{task_id}", save_top_k=1, enable_version_counter=False,
        every_n_train_steps=every_n_steps, save_on_train_epoch_end=False,
        train_time_interval=timedelta(minutes=every_minutes) if every_minutes else None,
    )  # fmt: skip
    return [MidTaskState(loader), saver]


class MidTaskState(L.Callback):
    def __init__(self, loader):
        self.loader, self.batches, self.rng = loader, 0, None

    @override
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.batches = 0

    @override
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.rng is not None:  # the first batch after a restore draws what it would have drawn
            checkpoint.set_rng_states(self.rng)
            self.rng = None

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1  # runs before ModelCheckpoint's save (Lightning calls checkpointing last)

    @override
    def on_save_checkpoint(self, trainer, pl_module, ckpt: dict) -> None:
        ckpt["continual"] = {"rng": checkpoint.rng_states(), "epoch_order": self.loader.epoch_state,
                             "batches": self.batches}  # fmt: skip

    @override
    def on_load_checkpoint(self, trainer, pl_module, ckpt: dict) -> None:
        state = ckpt["continual"]
        self.rng, self.batches = state["rng"], state["batches"]
        self.loader.resume_at(state["epoch_order"], state["batches"])
