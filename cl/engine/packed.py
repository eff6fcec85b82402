"""Several LoRA runs trained together over one frozen base, each batch through the base once
(the multi-LoRA idea of mLoRA, Ye et al. 2023): runs that differ only in seed, rank, scaling or
rate share the pretrained weights, so their batches are stacked into one and every LoRA layer adds
each run's adapter to its own rows (peft's mixed-batch forward). Each run keeps its own adapters,
heads, optimizer, schedule, gradient clipping and random-number stream, is evaluated alone, and
writes its own results folder, as if it had run by itself.

With every dropout at 0 (the base's, the adapters', the heads') a packed run equals the same run
alone within float tolerance (tests/test_packed.py). With dropout, each run's masks are drawn from
one shared stream, so the runs are as random as alone but not bit-identical to them.

A stopped job resumes as a run alone does: every run's checkpoint (its adapters, heads, strategy
state and its own random-number states) is written at each task boundary, all runs' together, and
calling ``run_packed`` again on the same folders continues after the last task they all finished,
to the same results as a job never stopped.
"""

import hashlib
import logging
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import CombinedLoader
from omegaconf import DictConfig, OmegaConf
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from peft.tuners.lora.model import _adapter_names_pre_forward_hook
from transformers import get_scheduler

from cl.engine import checkpoint
from cl.engine.build import build
from cl.engine.loop import ContinualLoop, Experiment, tensor_digest
from cl.engine.stops import own_folder, terminate_on_signals, why

log = logging.getLogger(__name__)

NEXT = "checkpoint.next.pt"  # a packed run's new checkpoint until every run has written its own

# What may differ between packed runs (beyond the settings that never change a result).
VARYING = ("seed", "strategy.lora.lr", "strategy.lora.r", "strategy.lora.alpha", "strategy.lora.dropout",
           "optimizer.lr", "optimizer.weight_decay")  # fmt: skip


def check(exps: list[Experiment]) -> None:
    """Refuse, naming the setting, runs that cannot share a base and a batch."""
    plain = lambda cfg: OmegaConf.to_container(cfg, resolve=True)  # noqa: E731
    first = plain(exps[0].cfg)
    for exp in exps:
        names = list(exp.cfg.strategy or {})
        if names != ["lora"] or exp.cfg.strategy.lora.method != "lora":
            raise ValueError(f"packing trains LoRA runs (strategy=lora, method lora); got strategy {names}")
        if exp.module.causal_lm:
            raise ValueError("packing supports the encoder classifier so far; language-model runs train one by one")
        if exp.module.length_chunks != 1:
            raise ValueError("packing encodes each batch once for every run: set model.length_chunks=1")
        if exp.settings.selection.monitor or exp.settings.mid_task_steps or exp.settings.mid_task_minutes:
            raise ValueError("packing does not support selection.monitor or mid_task_checkpoint: run those one by one")
        diff = checkpoint.differences(first, plain(exp.cfg), checkpoint.FREE + VARYING)
        if diff:
            raise ValueError(f"packed runs may differ only in {', '.join(VARYING)}; these differ: {'; '.join(diff)}")
    digests = {_digest(exp.module.network.backbone) for exp in exps}
    if len(digests) > 1:
        raise ValueError("the packed runs' base models differ (a randomly initialised model differs per seed): "
                         "pack runs of one seed, or of a pretrained model")  # fmt: skip


def _digest(model: torch.nn.Module) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode() + tensor_digest(t))
    return h.digest()


def own_weights(module, adapter: str) -> list[tuple[str, torch.nn.Parameter]]:
    """What one packed run trains in a task: its heads and its adapter ``adapter`` (what a run alone
    has trainable), not the other runs' adapters on the shared base."""
    return [(n, p) for n, p in module.named_parameters() if n.startswith("network.heads.") or adapter in n.split(".")]


class Packed(L.LightningModule):
    """The runs' modules (one shared backbone) trained on one stacked batch per step."""

    def __init__(self, exps: list[Experiment], steps: int):
        super().__init__()
        self.runs = torch.nn.ModuleList(exp.module for exp in exps)
        self.exps, self.steps = exps, steps
        self.automatic_optimization = False  # one optimizer and one clipping per run

    @property
    def backbone(self) -> PeftModel:
        return self.runs[0].network.backbone

    def training_step(self, batches: list[dict], batch_idx: int) -> torch.Tensor:
        width = max(b["input_ids"].shape[1] for b in batches)
        pad = lambda t: F.pad(t, (0, width - t.shape[1]))  # noqa: E731  (right padding, masked out)
        ids = torch.cat([pad(b["input_ids"]) for b in batches])
        mask = torch.cat([pad(b["attention_mask"]) for b in batches])
        names = [run.cl_callbacks[0].adapter(run.task_id) for run in self.runs]
        rows = [name for name, b in zip(names, batches) for _ in range(len(b["labels"]))]
        hook = partial(_adapter_names_pre_forward_hook, adapter_names=rows)
        handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in self.backbone.modules()
                   if isinstance(m, LoraLayer)]  # fmt: skip
        try:
            features = self.runs[0].network.features(ids, mask)
        finally:
            for h in handles:
                h.remove()
        losses, start = [], 0
        for run, batch in zip(self.runs, batches):
            n = len(batch["labels"])
            loss = run.task_loss(batch, run.outputs(batch, features[start : start + n]))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {float(loss)} in packed run {len(losses)}, task {run.task_id}: "
                                         "try a lower strategy.lora.lr")  # fmt: skip
            losses.append(loss)
            start += n
        optimizers, schedulers = self.optimizers(), self.lr_schedulers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        for opt in optimizers:
            opt.zero_grad()
        total = sum(losses)
        self.manual_backward(total)
        for exp, opt, schedule in zip(self.exps, optimizers, schedulers):
            if clip := exp.settings.trainer.get("gradient_clip_val"):
                self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
            opt.step()
            schedule.step()
        for k, loss in enumerate(losses):
            self.log(f"train/loss{k}", loss, batch_size=len(batches[k]["labels"]))
        return total.detach()

    def configure_optimizers(self):
        """Each run's optimizer over its trainable weights (its current adapter and its heads), shaped by
        its strategy (the adapters' rate), with its own warm-up and decay, as ``ContinualModule``'s."""
        optimizers, schedules = [], []
        for run in self.runs:
            own = own_weights(run, run.cl_callbacks[0].adapter(run.task_id))
            groups = [{"params": [p for _, p in own if p.requires_grad]}]
            for cb in run.cl_callbacks:
                groups = cb.param_groups(run, groups)
            opt = run.optimizer_factory(groups)
            optimizers.append(opt)
            schedules.append(get_scheduler(run.scheduler, opt, int(run.warmup_ratio * self.steps), self.steps))
        return optimizers, schedules  # stepped in training_step, every step


def run_packed(cfgs: list[DictConfig], out_dirs: list[str | Path]) -> list[Experiment]:
    """Build the runs of ``cfgs`` and train them together, task by task; each run's results land in
    its own folder of ``out_dirs`` (and in its experiment's ``results``). Folders holding a stopped
    packed job's results and checkpoints are resumed after their last finished task."""
    with ExitStack() as owned, terminate_on_signals():
        for out in out_dirs:
            Path(out).mkdir(parents=True, exist_ok=True)
            owned.enter_context(own_folder(out))
        _settle(out_dirs)
        exps, rngs = [], []
        for cfg in cfgs:
            exps.append(build(cfg))
            rngs.append(checkpoint.rng_states())  # each run's random stream as its own build left it
        check(exps)
        shared = exps[0].module.network.backbone
        for exp in exps:
            exp.module.network.backbone = shared
            exp.module.cl_callbacks[0].prefix = f"run{exps.index(exp)}_"
        _resume(exps, out_dirs, rngs)
        loops = [ContinualLoop(exp, out) for exp, out in zip(exps, out_dirs)]
        try:
            _run(exps, loops, rngs)
        except BaseException as err:  # every run records the stop; the next call resumes them together
            for loop in loops:
                loop.results.status, loop.results.error = why(err)
                loop.save()
            raise
        for exp, out in zip(exps, out_dirs):
            if not exp.cfg.keep_checkpoint:  # a finished run needs no resuming
                (Path(out) / checkpoint.FILE).unlink(missing_ok=True)
    return exps


def _settle(out_dirs: list[str | Path]) -> None:
    """Finish or undo the checkpoint save a stop interrupted. Packed runs save in two phases (every
    run's new checkpoint beside its old one, then each renamed over the old), so that the runs never
    resume from different tasks: when every run has the new one, or the rename already made it its
    checkpoint, the renames are finished; otherwise the new ones are dropped."""
    nexts = [Path(out) / NEXT for out in out_dirs]
    if not any(n.exists() for n in nexts):
        return
    target = checkpoint.load(next(n for n in nexts if n.exists()))["completed_tasks"]

    def renamed(out) -> bool:
        ckpt = Path(out) / checkpoint.FILE
        return ckpt.exists() and checkpoint.load(ckpt)["completed_tasks"] == target

    forward = all(n.exists() or renamed(out) for out, n in zip(out_dirs, nexts))
    for out, n in zip(out_dirs, nexts):
        if n.exists():
            n.replace(Path(out) / checkpoint.FILE) if forward else n.unlink()
    log.info("an interrupted save of the packed runs' checkpoints was %s", "finished" if forward else "undone")


def _resume(exps: list[Experiment], out_dirs: list[str | Path], rngs: list[dict]) -> None:
    """Continue the runs from their checkpoints when every folder has one (else they start afresh);
    each run's adapters are rebuilt under its own names before its weights are loaded."""
    have = [(Path(out) / "results.json").exists() for out in out_dirs]
    if not any(have):
        return
    if not all((Path(out) / checkpoint.FILE).exists() for out in out_dirs):
        log.warning("packed runs in %s... stopped without a checkpoint in every folder (checkpoint=false, or "
                    "stopped before the first): they start again", out_dirs[0])  # fmt: skip
        return
    opened = [checkpoint.open_run(out, OmegaConf.to_container(exp.cfg, resolve=True))
              for exp, out in zip(exps, out_dirs)]  # fmt: skip
    done = {state["completed_tasks"] for _, state in opened}
    if len(done) > 1:
        raise ValueError(f"the packed runs' checkpoints are after different tasks ({sorted(done)}) in {out_dirs}: "
                         "move the folders away to train the runs again")  # fmt: skip
    done = done.pop()
    for exp, (_, state) in zip(exps, opened):
        checkpoint.load_strategies(exp.callbacks, state)
    for exp in exps:  # the adapters, in the shared base, before any weights are loaded into them
        for cb in exp.module.cl_callbacks:
            cb.on_run_start(exp.module, exp.stream, done)
        for other in exps:
            other.module.network.backbone = exp.module.network.backbone
    for k, (exp, (results, state)) in enumerate(zip(exps, opened)):
        state["trained"] = checkpoint.load_weights(exp.module, state)
        results.resumed_after.append(results.completed_tasks)
        results.status = "running"
        exp.results, exp.state, exp.resume_dir, rngs[k] = results, state, str(out_dirs[k]), state["rng"]
    log.info("resuming %d packed runs after %d finished tasks", len(exps), done)


def _save(loops: list[ContinualLoop], rngs: list[dict]) -> None:
    """Every run's results, then (two-phase, see ``_settle``) its checkpoint with its own RNG states."""
    for loop in loops:
        loop.save()  # results only (the loop's own save, rank 0); checkpoints follow in two phases
    if not loops[0].settings.checkpoints:
        return
    for loop, rng in zip(loops, rngs):
        done = loop.results.completed_tasks
        checkpoint.save(loop.out_dir, loop.module, loop.cl_callbacks, done, loop.trained, rng, NEXT)
    for loop in loops:
        (Path(loop.out_dir) / NEXT).replace(Path(loop.out_dir) / checkpoint.FILE)


def _run(exps: list[Experiment], loops: list[ContinualLoop], rngs: list[dict]) -> None:
    if not loops[0].results.initial_accuracy:  # resumed runs have it
        for loop in loops:
            start = time.perf_counter()
            loop.results.initial_accuracy = loop.evaluate()
            loop.results.initial_eval_seconds = time.perf_counter() - start
        _save(loops, rngs)
    for t in range(loops[0].results.completed_tasks, len(exps[0].stream)):
        seconds = _train_task(exps, rngs, t)
        for loop in loops:
            start = time.perf_counter()
            row = loop.evaluate()
            res, adapter = loop.results, loop.cl_callbacks[0].adapter(t)
            res.accuracy_matrix.append(row)
            res.train_seconds.append(seconds)  # the packed task's wall time, shared by its runs
            res.eval_seconds.append(time.perf_counter() - start)
            res.train_examples.append(len(loop.stream.tasks[t].train))
            own = own_weights(loop.module, adapter)
            res.trainable_params.append(sum(p.numel() for _, p in own))
            loop.trained |= {n for n, p in own if p.requires_grad}
            res.strategy_report.append({**loop.cl_callbacks[0].report(), "packed_runs": len(exps)})
        _save(loops, rngs)
        log.info("task %d/%d trained for %d packed runs in %.1fs", t + 1, len(exps[0].stream), len(exps), seconds)
    for loop in loops:
        loop.results.status = "finished"
        loop.save()


def _train_task(exps: list[Experiment], rngs: list[dict], t: int) -> float:
    loaders = []
    for k, exp in enumerate(exps):
        module, data = exp.module, exp.stream.tasks[t].train
        module.task_id = t
        data = data.add_column("row", list(range(len(data))))
        checkpoint.set_rng_states(rngs[k])  # the adapter's random initialisation: this run's stream
        for cb in module.cl_callbacks:
            cb.on_task_start(module, t, exp.stream, data)
        rngs[k] = checkpoint.rng_states()
        for other in exps:  # the first adapter wraps the shared base in a PeftModel: every run takes it
            other.module.network.backbone = module.network.backbone
        loaders.append(exp.stream.train_loader(data, exp.settings.batch_size, exp.cfg.seed * 1000 + t, 0, 1,
                                               exp.settings.group_by_length))  # fmt: skip
    if len({len(dl) for dl in loaders}) > 1:
        sizes = [len(d) for d in loaders]
        raise ValueError(f"packed runs need the same number of batches per task; task {t} has {sizes}")
    backbone = exps[0].module.network.backbone
    backbone.base_model.set_adapter([exp.module.cl_callbacks[0].adapter(t) for exp in exps])  # all trainable at once
    settings = dict(exps[0].settings.trainer)
    settings.pop("gradient_clip_val", None)  # clipped per run, in the step
    steps = len(loaders[0]) * settings.get("max_epochs", 1)
    packed = Packed(exps, steps)
    trainer = L.Trainer(**settings, logger=False, callbacks=[], use_distributed_sampler=False)
    packed.train()
    start = time.perf_counter()
    trainer.fit(packed, CombinedLoader(loaders, mode="min_size"))
    seconds = time.perf_counter() - start
    for opt in trainer.optimizers:
        opt.state.clear()
    for k, exp in enumerate(exps):
        checkpoint.set_rng_states(rngs[k])
        for cb in exp.module.cl_callbacks:
            cb.on_task_end(exp.module, t, exp.stream, None)
        rngs[k] = checkpoint.rng_states()
    return seconds
