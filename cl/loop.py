"""The task loop: train on each task with a fresh Trainer, then evaluate on every task of the stream."""

import logging
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from cl import checkpoint
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
        save_checkpoints: write ``checkpoint.pt`` at every task boundary, so the run can be resumed.
        trained: names of parameters trained so far, and ``rng``: RNG states to set before the
            next task; both come from a checkpoint when a run is resumed.
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
        save_checkpoints: bool = False,
        trained: set[str] | None = None,
        rng: dict | None = None,
    ):
        self.module, self.stream, self.callbacks = module, stream, callbacks
        self.trainer_kwargs, self.results, self.out_dir = trainer_kwargs, results, out_dir
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.loggers = loggers or []
        self.save_checkpoints, self.trained, self.rng = save_checkpoints, set(trained or ()), rng
        module.cl_callbacks = self.cl_callbacks

    @property
    def cl_callbacks(self) -> list[ContinualCallback]:
        return [cb for cb in self.callbacks if isinstance(cb, ContinualCallback)]

    def trainer(self, logger) -> L.Trainer:
        kwargs = dict(self.trainer_kwargs)
        # Other tasks' heads get no gradient in a step, which plain DDP treats as an error.
        if kwargs.get("strategy") == "ddp":
            kwargs["strategy"] = "ddp_find_unused_parameters_true"
        # The stream shards its own loaders across processes (seeded, and evaluation without the
        # repeated examples a DistributedSampler adds), so Lightning must not replace their samplers.
        return L.Trainer(**kwargs, callbacks=self.callbacks, logger=logger, use_distributed_sampler=False)

    def evaluate(self) -> list[float]:
        """Accuracy on the test split of every task of the stream, seen or not."""
        trainer = self.trainer(logger=False)
        loaders = self.stream.test_loaders(self.eval_batch_size, trainer.global_rank, trainer.world_size)
        out = trainer.test(self.module, dataloaders=loaders, verbose=False)
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
        self.trained |= {n for n, p in self.module.named_parameters() if p.requires_grad}
        self.results.train_examples.append(len(data))
        trainer = self.trainer(logger=self.loggers or False)
        seed = self.seed * 1000 + task_id
        loader = self.stream.train_loader(data, self.batch_size, seed, trainer.global_rank, trainer.world_size)
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

    def save(self, with_checkpoint: bool = False) -> None:
        """Results (and the checkpoint) of the finished tasks; in a multi-process run only rank 0 writes.
        A crash between the two leaves results one task ahead, which a resume drops and redoes."""
        if rank_zero_only.rank != 0:
            return
        self.results.save(self.out_dir)
        if with_checkpoint:
            done = self.results.completed_tasks
            checkpoint.save(self.out_dir, self.module, self.cl_callbacks, done, self.trained)

    def run(self) -> RunResults:
        res, names = self.results, self.stream.task_names
        if not res.initial_accuracy:  # a resumed run has it already
            start = time.perf_counter()
            res.initial_accuracy = self.evaluate()
            res.initial_eval_seconds = time.perf_counter() - start
            self.save()
        if self.rng is not None:
            checkpoint.set_rng_states(self.rng)
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
            self.save(with_checkpoint=self.save_checkpoints)
            log_task(self.loggers, t, names, row, report)
            log.info(
                "task %d/%d %-12s acc %.3f | seen mean %.3f | train %.1fs eval %.1fs",
                t + 1, len(names), names[t], row[t], sum(row[: t + 1]) / (t + 1), train_s, eval_s,
            )  # fmt: skip
        res.status = "finished"
        self.save()
        log_final(self.loggers, res, self.out_dir)
        return res
