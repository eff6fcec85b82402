"""The task loop: train on each task with a fresh Trainer, then evaluate on every task of the stream."""

import logging
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import Logger

from cl.callback import ContinualCallback
from cl.loggers import log_final, log_task
from cl.module import ContinualModule
from cl.results import RunResults
from tasks.stream import Stream

log = logging.getLogger(__name__)


class ContinualLoop:
    """Runs a stream. A Trainer that has finished fitting will not fit again, so each task gets a new
    one, built from the same settings and handed the same callback objects (strategy state persists).

    Args:
        trainer_kwargs: ``lightning.Trainer`` arguments (``max_epochs``, ``accelerator``, ``precision``...).
        results: filled in and saved to ``out_dir`` after the initial evaluation and after every task.
    """

    def __init__(
        self,
        module: ContinualModule,
        stream: Stream,
        callbacks: list[L.Callback],
        trainer_kwargs: dict,
        results: RunResults,
        out_dir: str | Path,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        loggers: list[Logger] | None = None,
    ):
        self.module, self.stream, self.callbacks = module, stream, callbacks
        self.trainer_kwargs, self.results, self.out_dir = trainer_kwargs, results, out_dir
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.loggers = loggers or []
        module.cl_callbacks = self.cl_callbacks

    @property
    def cl_callbacks(self) -> list[ContinualCallback]:
        return [cb for cb in self.callbacks if isinstance(cb, ContinualCallback)]

    def evaluate(self) -> list[float]:
        """Accuracy on the test split of every task of the stream, seen or not."""
        trainer = L.Trainer(**self.trainer_kwargs, callbacks=self.callbacks, logger=False)
        out = trainer.test(self.module, dataloaders=self.stream.test_loaders(self.eval_batch_size), verbose=False)
        merged = {k: v for d in out for k, v in d.items()}
        # Accuracies are ratios of counts; rounding drops float32 noise (0.9150000214 -> 0.915).
        return [round(float(merged[f"eval/task{j}/acc"]), 6) for j in range(len(self.stream))]

    def train_task(self, task_id: int) -> float:
        self.module.task_id = task_id
        data = self.stream.tasks[task_id].train
        for cb in self.cl_callbacks:
            data = cb.train_data(self.module, task_id, self.stream, data)
        data = data.add_column("row", list(range(len(data))))
        for cb in self.cl_callbacks:
            cb.on_task_start(self.module, task_id, self.stream, data)
        self.results.train_examples.append(len(data))
        loader = self.stream.train_loader(data, self.batch_size, seed=self.seed * 1000 + task_id)
        trainer = L.Trainer(**self.trainer_kwargs, callbacks=self.callbacks, logger=self.loggers or False)
        # Lightning keeps each submodule's train/eval mode across test(); training starts in train
        # mode, and strategies that want parts in eval mode set that in their own hooks.
        self.module.train()
        start = time.perf_counter()
        trainer.fit(self.module, train_dataloaders=loader)
        seconds = time.perf_counter() - start
        if trainer.interrupted:
            raise KeyboardInterrupt(f"training interrupted during task {task_id}")
        for cb in self.cl_callbacks:
            cb.on_task_end(self.module, task_id, self.stream, data)
        return seconds

    def run(self) -> RunResults:
        res, names = self.results, self.stream.task_names
        start = time.perf_counter()
        res.initial_accuracy = self.evaluate()
        res.initial_eval_seconds = time.perf_counter() - start
        res.save(self.out_dir)
        for t in range(res.completed_tasks, len(self.stream)):
            train_s = self.train_task(t)
            start = time.perf_counter()
            row = self.evaluate()
            eval_s = time.perf_counter() - start
            res.accuracy_matrix.append(row)
            res.train_seconds.append(train_s)
            res.eval_seconds.append(eval_s)
            res.trainable_params.append(sum(p.numel() for p in self.module.parameters() if p.requires_grad))
            report = {k: v for cb in self.cl_callbacks for k, v in cb.report().items()}
            res.strategy_report.append(report)
            res.save(self.out_dir)
            log_task(self.loggers, t, names, row, report)
            log.info(
                "task %d/%d %-12s acc %.3f | seen mean %.3f | train %.1fs eval %.1fs",
                t + 1, len(names), names[t], row[t], sum(row[: t + 1]) / (t + 1), train_s, eval_s,
            )  # fmt: skip
        res.status = "finished"
        res.save(self.out_dir)
        log_final(self.loggers, res, self.out_dir)
        return res
