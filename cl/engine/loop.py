"""The task loop: train on each task with a fresh Trainer, then evaluate on every task of the stream."""

import hashlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from cl.engine import checkpoint, mid_task, selection
from cl.engine.callback import ContinualCallback
from cl.engine.loggers import log_final, log_task
from cl.engine.module import ContinualModule
from cl.engine.results import RunResults
from cl.engine.selection import SelectionSettings
from tasks.stream import Stream

log = logging.getLogger(__name__)


@dataclass
class LoopSettings:
    """How the loop trains and evaluates. ``trainer``: ``lightning.Trainer`` arguments (``max_epochs``,
    ``accelerator``, ``precision``...); ``checkpoints``: write ``checkpoint.pt`` at every task boundary;
    ``mid_task_steps``/``mid_task_minutes``: also checkpoint within a task (``cl.engine.mid_task``)."""

    trainer: dict
    batch_size: int
    eval_batch_size: int
    seed: int
    checkpoints: bool = False
    mid_task_steps: int | None = None
    mid_task_minutes: float | None = None
    group_by_length: bool = False  # training batches of similar length (tasks.stream.LengthGroupedBatches)
    selection: SelectionSettings = field(default_factory=SelectionSettings)  # per-task model selection
    skip_unchanged_evaluation: bool = True  # keep the score of a task whose evaluation inputs did not change

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "LoopSettings":
        trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
        mid = cfg.get("mid_task_checkpoint") or {}
        return cls(trainer, cfg.batch_size, cfg.eval_batch_size, cfg.seed, cfg.get("checkpoint", False),
                   mid.get("every_n_steps"), mid.get("every_minutes"), cfg.get("group_by_length", False),
                   SelectionSettings.from_config(cfg.get("selection")))  # fmt: skip


def tensor_digest(t: torch.Tensor) -> bytes:
    """A digest of a tensor's bytes: equal digests, byte-identical tensors."""
    return hashlib.blake2b(t.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy(), digest_size=16).digest()


@dataclass
class Experiment:
    """Everything a run is made of, built from the config before any training (``cl.engine.build``).
    A resumed run carries the checkpoint it continues from (``state``) and writes into its folder."""

    module: ContinualModule
    stream: Stream
    callbacks: list[L.Callback]
    results: RunResults
    settings: LoopSettings
    cfg: DictConfig  # the whole config, for what runs around the loop (loggers, log lines)
    resume_dir: str | None = None
    state: dict | None = None


class ContinualLoop:
    """Runs an experiment's stream, writing its results into ``out_dir``. A Trainer that has finished
    fitting will not fit again, so each task gets a new one, built from the same settings and handed
    the same callback objects (strategy state persists)."""

    def __init__(self, exp: Experiment, out_dir: str | Path, loggers: list[Logger] | None = None):
        self.module, self.stream, self.callbacks = exp.module, exp.stream, exp.callbacks
        self.results, self.settings, self.out_dir = exp.results, exp.settings, out_dir
        self.loggers = loggers or []
        self.trained = set(exp.state["trained"]) if exp.state else set()
        self.digests: dict[int, bytes] = {}  # of each task's evaluation inputs at its last evaluation
        self.rng = exp.state["rng"] if exp.state else None

    @property
    def cl_callbacks(self) -> list[ContinualCallback]:
        return self.module.cl_callbacks  # chosen once, when the run is built

    def trainer(self, logger, extra_callbacks: list | None = None) -> L.Trainer:
        kwargs = dict(self.settings.trainer)
        if extra_callbacks:
            kwargs["enable_checkpointing"] = True  # mid-task and best-score checkpoints are Lightning's own
        if self.settings.selection.monitor:
            # Validation updates the same score metrics the test loop resets; tensors made under
            # inference mode cannot be updated outside it, so evaluation runs under no_grad.
            kwargs["inference_mode"] = False
            if self.settings.selection.val_check_interval:
                kwargs["val_check_interval"] = self.settings.selection.val_check_interval
        # Other tasks' heads get no gradient in a step, which plain DDP treats as an error.
        if kwargs.get("strategy") == "ddp":
            kwargs["strategy"] = "ddp_find_unused_parameters_true"
        # The stream shards its own loaders across processes (seeded, and evaluation without the
        # repeated examples a DistributedSampler adds), so Lightning must not replace their samplers.
        callbacks = [*self.callbacks, *(extra_callbacks or [])]
        return L.Trainer(**kwargs, callbacks=callbacks, logger=logger, use_distributed_sampler=False)

    def evaluation_digests(self) -> list[bytes | None]:
        """For each task of the stream, a digest of every tensor its test predictions depend on, when
        every strategy can name them (``ContinualCallback.evaluation_inputs``); else None."""
        if not self.cl_callbacks:
            return [None] * len(self.stream)
        cache, out = {}, []
        for j in range(len(self.stream)):
            named = [cb.evaluation_inputs(self.module, j) for cb in self.cl_callbacks]
            if any(n is None for n in named):
                out.append(None)
                continue
            h = hashlib.blake2b(digest_size=16)
            for name, t in sorted({k: v for n in named for k, v in n.items()}.items()):
                if name not in cache:
                    cache[name] = tensor_digest(t)
                h.update(name.encode() + cache[name])
            out.append(h.digest())
        return out

    def evaluate(self) -> list[float]:
        """The score on the test split of every task of the stream, seen or not (then the stream's
        general-ability probes, kept in ``results.general``). A task whose every input tensor is
        byte-identical to its last evaluation's (an isolated adapter's earlier task) keeps that
        evaluation's score: on the same data, deterministic evaluation would compute it again."""
        trainer = self.trainer(logger=False)
        loaders = self.stream.test_loaders(self.settings.eval_batch_size, trainer.global_rank, trainer.world_size)
        res = self.results
        last = res.accuracy_matrix[-1] if res.accuracy_matrix else res.initial_accuracy
        digests = self.evaluation_digests() if self.settings.skip_unchanged_evaluation else [None] * len(self.stream)
        same = [j for j, d in enumerate(digests) if d is not None and last and self.digests.get(j) == d]
        for j in same:
            loaders[j] = DataLoader([], batch_size=1)
        if same:
            log.info("tasks %s not scored again: nothing their predictions depend on changed", same)
        # Evaluation draws random numbers (a seed per loader iterated, MC dropout's passes): restored
        # afterwards, so that training does not depend on what was evaluated (tasks skipped, probes).
        rng = checkpoint.rng_states()
        try:
            with warnings.catch_warnings():  # the skipped tasks' empty loaders are intended
                warnings.filterwarnings("ignore", message="Total length of `DataLoader` across ranks is zero")
                out = trainer.test(self.module, dataloaders=loaders, verbose=False)
        finally:
            checkpoint.set_rng_states(rng)
        self.digests = {j: d for j, d in enumerate(digests) if d is not None}
        merged = {k: v for d in out for k, v in d.items()} | {f"eval/task{j}/acc": last[j] for j in same}
        samples = getattr(self.module, "samples", None)  # generated texts a person can read
        if samples or (same and res.samples):
            names = [*self.stream.task_names, *(p.name for p in self.stream.probes)]
            previous = res.samples[-1] if res.samples else {}  # a skipped task's texts are its last ones
            kept = {names[j]: previous[names[j]] for j in same if names[j] in previous}
            res.samples.append(kept | {names[j]: s for j, s in sorted(samples.items())})
        # Accuracies are ratios of counts; rounding drops float32 noise (0.9150000214 -> 0.915).
        every = len(self.stream) + len(self.stream.probes)
        scores = [round(float(merged[f"eval/task{j}/acc"]), 6) for j in range(every)]
        if self.stream.probes:
            self.results.general.append(scores[len(self.stream) :])
        return scores[: len(self.stream)]

    def unchanged(self) -> list[float]:
        """The scores of a model that nothing trained since its last evaluation: that evaluation's."""
        res = self.results
        if res.general:
            res.general.append(list(res.general[-1]))
        if res.samples:
            res.samples.append(res.samples[-1])
        return list(res.accuracy_matrix[-1] if res.accuracy_matrix else res.initial_accuracy)

    def train_task(self, task_id: int) -> float | None:
        """Train on task ``task_id``; ``None`` when its strategies leave nothing to train on."""
        self.module.task_id = task_id
        data = self.stream.tasks[task_id].train
        for cb in self.cl_callbacks:
            data = cb.train_data(self.module, task_id, self.stream, data)
        self.results.train_examples.append(len(data))
        if len(data) == 0:  # e.g. multitask after its one training: no hook runs, the model stays as it is
            return None
        data = data.add_column("row", list(range(len(data))))
        for cb in self.cl_callbacks:
            cb.on_task_start(self.module, task_id, self.stream, data)
        self.trained |= {n for n, p in self.module.named_parameters() if p.requires_grad}
        trainer = self.trainer(logger=self.loggers or False)
        seed = self.settings.seed * 1000 + task_id
        loader = self.stream.train_loader(data, self.settings.batch_size, seed, trainer.global_rank, trainer.world_size,
                                          self.settings.group_by_length)  # fmt: skip
        extra, resume_from = [], None
        if self.settings.mid_task_steps or self.settings.mid_task_minutes:
            steps, minutes = self.settings.mid_task_steps, self.settings.mid_task_minutes
            extra += mid_task.callbacks(self.out_dir, task_id, steps, minutes, loader)
            found = mid_task.path(self.out_dir, task_id)
            resume_from = found if found.exists() else None
            if resume_from:
                log.info("continuing task %d from its mid-task checkpoint %s", task_id, found)
        chooser, validation = [], None
        if self.settings.selection.monitor:
            chooser = selection.callbacks(self.out_dir, task_id, self.settings.selection)
            validation = self.stream.validation_loader(task_id, self.settings.eval_batch_size, trainer.global_rank,
                                                       trainer.world_size)  # fmt: skip
        if extra or chooser:
            trainer = self.trainer(self.loggers or False, [*extra, *chooser])
        # Lightning keeps each submodule's train/eval mode across test(); training starts in train
        # mode, and strategies that want parts in eval mode set that in their own hooks.
        self.module.train()
        start = time.perf_counter()
        with warnings.catch_warnings():
            if validation is None:  # no model selection: the module's validation_step is meant to idle
                warnings.filterwarnings("ignore", message="You defined a `validation_step` but have no")
            trainer.fit(self.module, loader, validation, ckpt_path=resume_from, weights_only=True)
        seconds = time.perf_counter() - start
        if trainer.interrupted:
            raise KeyboardInterrupt(f"training interrupted during task {task_id}")
        # Every task starts a new optimizer, but the Trainer (referenced by the module) would keep
        # this one's moments, two copies of the trainable weights, alive into the next task's peak.
        for optimizer in trainer.optimizers:
            optimizer.state.clear()
        if chooser:
            self.results.validation.append(selection.restore_best(self.module, chooser, trainer))
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
            if done:  # the boundary supersedes the finished task's mid-task checkpoint
                mid_task.path(self.out_dir, done - 1).unlink(missing_ok=True)

    def run(self) -> RunResults:
        res, names = self.results, self.stream.task_names
        if not res.initial_accuracy:  # a resumed run has it already
            start = time.perf_counter()
            res.initial_accuracy = self.evaluate()
            res.initial_eval_seconds = time.perf_counter() - start
            # A resume from here restores the RNG states saved now, as after any other evaluation.
            self.save(with_checkpoint=self.settings.checkpoints)
        if self.rng is not None:
            checkpoint.set_rng_states(self.rng)
        for t in range(res.completed_tasks, len(self.stream)):
            train_s = self.train_task(t)
            if train_s is None:  # nothing trained: the last evaluation's scores stand
                train_s, eval_s, row = 0.0, 0.0, self.unchanged()
            else:
                start = time.perf_counter()
                row = self.evaluate()
                eval_s = time.perf_counter() - start
            res.accuracy_matrix.append(row)
            res.train_seconds.append(train_s)
            res.eval_seconds.append(eval_s)
            res.trainable_params.append(sum(p.numel() for p in self.module.parameters() if p.requires_grad))
            report = {k: v for cb in self.cl_callbacks for k, v in cb.report().items()}
            res.strategy_report.append(report)
            self.save(with_checkpoint=self.settings.checkpoints)
            general = {f"general/{n}": v for n, v in zip(res.general_names, res.general[-1])} if res.general else {}
            log_task(self.loggers, t, names, row, {**report, **general})
            log.info(
                "task %d/%d %-12s acc %.3f | seen mean %.3f | train %.1fs eval %.1fs",
                t + 1, len(names), names[t], row[t], sum(row[: t + 1]) / (t + 1), train_s, eval_s,
            )  # fmt: skip
        res.status = "finished"
        self.save()
        log_final(self.loggers, res, self.out_dir)
        return res
