"""``python -m cl.run``: train a model through a stream of tasks with the chosen strategies.

Examples::

    python -m cl.run                                   # the embedded real benchmark, naive fine-tuning
    python -m cl.run stream=synthetic logger=none seed=3 trainer.max_epochs=1
    python -m cl.run -m strategy=naive seed=0,1,2       # a Hydra multirun sweep
    python -m cl.run stream=synthetic resume=outputs/synthetic/naive/seed0/<time>   # continue a stopped run
"""

import logging
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from cl import checkpoint
from cl.checks import check_settings
from cl.lm import LanguageModel, LMModule, build_prompts
from cl.loggers import close as close_loggers
from cl.loop import ContinualLoop
from cl.models import build_encoder, is_causal
from cl.module import ContinualModule
from cl.network import Classifier
from cl.results import RunResults
from tasks.stream import Stream, build_stream

log = logging.getLogger("cl")

# Every task builds two Trainers; their start-up banners (accelerator, tips) would drown the
# per-task lines, so keep those loggers to warnings.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def strategy_name(strategies: DictConfig | None) -> str:
    """``naive``, ``replay`` or ``replay+distill``: the chosen strategies, naive dropped when combined."""
    names = list(strategies or {}) or ["naive"]
    return "+".join(n for n in names if n != "naive" or len(names) == 1)


def order_name(order) -> str:
    """``default`` or the task order joined by dashes (``2-0-3-1``), for folder names and tags."""
    return "default" if order is None else "-".join(str(i) for i in order)


OmegaConf.register_new_resolver("cl.strategy_name", strategy_name, replace=True)
OmegaConf.register_new_resolver("cl.order_name", order_name, replace=True)


def build_callbacks(strategies: DictConfig | None) -> list[L.Callback]:
    """One callback per chosen strategy; a strategy with no ``_target_`` is configuration alone."""
    try:
        return [instantiate(node) for node in (strategies or {}).values() if node and node.get("_target_")]
    except InstantiationException as err:  # the strategy's own message, not Hydra's wrapper
        if isinstance(err.__cause__, ValueError):
            raise err.__cause__ from None
        raise


def build_loggers(cfg: DictConfig) -> list:
    node = cfg.get("logger")
    logger = instantiate(node) if node and node.get("_target_") else None
    return [logger] if logger is not None else []


@dataclass
class Experiment:
    """Everything a run is made of, built from the config before any training."""

    module: ContinualModule
    stream: Stream
    callbacks: list[L.Callback]
    results: RunResults
    cfg: DictConfig
    resume_dir: str | None = None  # a resumed run writes into the folder it continues
    state: dict | None = None  # the checkpoint it continues from


def build(cfg: DictConfig) -> Experiment:
    L.seed_everything(cfg.seed, workers=True)
    check_settings(cfg)
    callbacks = build_callbacks(cfg.strategy)  # bad strategy settings fail before any data work
    config = OmegaConf.to_container(cfg, resolve=True)
    resumed, state = checkpoint.open_run(cfg.resume, config) if cfg.get("resume") else (None, None)
    start = time.perf_counter()
    encoder, tokenizer = build_encoder(cfg.model)
    model_seconds = time.perf_counter() - start
    stream = build_stream(cfg.stream, tokenizer, cfg.seed)
    data_seconds = time.perf_counter() - start - model_seconds
    sizes, optimizer = [t.num_classes for t in stream.tasks], instantiate(cfg.optimizer, _partial_=True)
    schedule = {"scheduler": cfg.scheduler.name, "warmup_ratio": cfg.scheduler.warmup_ratio}
    if is_causal(cfg.model):
        stream.prompts = build_prompts(stream.tasks, cfg.stream.tasks, tokenizer, stream.scenario)
        eos = getattr(tokenizer, "eos_token_id", None)
        stream.eos_id = eos if eos is not None else encoder.config.eos_token_id
        module = LMModule(LanguageModel(encoder), sizes, stream.scenario, optimizer, **schedule,
                          prompts=stream.prompts, evaluation=cfg.model.get("evaluation", "rank"),
                          pad_id=stream.pad_id, eos_id=stream.eos_id)  # fmt: skip
    else:
        network = Classifier(encoder, stream.head_sizes(), cfg.model.pooling, cfg.model.head_dropout)
        module = ContinualModule(network, sizes, stream.scenario, optimizer, **schedule)
    for cb in callbacks:
        cb.check(module, stream)
    if resumed is not None:
        resumed.resumed_after.append(resumed.completed_tasks)
        resumed.status = "running"
        if state is not None:
            state["trained"] = checkpoint.restore(module, callbacks, stream, state)
        return Experiment(module, stream, callbacks, resumed, cfg, str(cfg.resume), state)
    results = RunResults(
        stream=stream.name,
        strategy=strategy_name(cfg.strategy),
        seed=cfg.seed,
        scenario=stream.scenario,
        task_names=stream.task_names,
        test_examples=[len(t.test) for t in stream.tasks],
        config=config,
        total_params=sum(p.numel() for p in module.parameters()),
        setup_seconds={"model": model_seconds, "data": data_seconds},
    )
    return Experiment(module, stream, callbacks, results, cfg)


def execute(exp: Experiment, out_dir: str) -> RunResults:
    cfg, stream, results = exp.cfg, exp.stream, exp.results
    out_dir = exp.resume_dir or out_dir
    if exp.resume_dir:
        log.info("resuming %s after %d finished tasks", out_dir, results.completed_tasks)
    log.info(
        "stream %s (%s-incremental): %s | strategy %s | model %s",
        stream.name, stream.scenario,
        ", ".join(f"{t.name} {len(t.train)}/{len(t.test)}" for t in stream.tasks),
        results.strategy, cfg.model.name,
    )  # fmt: skip
    loggers = build_loggers(cfg)
    loop = ContinualLoop(
        exp.module, stream, exp.callbacks, OmegaConf.to_container(cfg.trainer, resolve=True), results, out_dir,
        cfg.batch_size, cfg.eval_batch_size, cfg.seed, loggers, save_checkpoints=cfg.checkpoint,
        trained=exp.state and exp.state["trained"], rng=exp.state and exp.state["rng"],
    )  # fmt: skip
    try:
        loop.run()
    except BaseException as err:
        # The finished tasks' rows are already on disk; mark the run so nobody mistakes it for complete.
        # Lightning turns Ctrl+C during fit into SystemExit(1) after ignoring further SIGINTs.
        stopped = isinstance(err, KeyboardInterrupt | SystemExit)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        results.status = "interrupted" if stopped else "failed"
        if rank_zero_only.rank == 0:
            results.save(out_dir)
        report = log.error if stopped or isinstance(err, FloatingPointError) else log.exception
        report(
            "run stopped (%s) after %d finished tasks; results so far in %s; continue it with resume=%s",
            err, results.completed_tasks, out_dir, out_dir,
        )  # fmt: skip
        close_loggers(loggers, ok=False)
        raise
    close_loggers(loggers, ok=True)
    if not cfg.keep_checkpoint:  # a finished run needs no resuming; its weights are large
        (Path(out_dir) / checkpoint.FILE).unlink(missing_ok=True)
    log.info("accuracy matrix (rows: after training on; columns: evaluated on)\n%s", results.table())
    log.info("results in %s", out_dir)
    return results


def run(cfg: DictConfig, out_dir: str) -> RunResults:
    return execute(build(cfg), out_dir)


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if cfg.offline else None
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    out_dir = HydraConfig.get().runtime.output_dir
    if cfg.get("skip_done") and (Path(out_dir) / "results.json").exists():
        # Sweeps write to fixed folders: a rerun skips finished runs and resumes stopped ones.
        previous = RunResults.load(out_dir)
        if previous.status == "finished":
            log.info("skipping %s: finished already", out_dir)
            return previous.metrics()["acc"]
        if (Path(out_dir) / checkpoint.FILE).exists() and not cfg.get("resume"):
            with open_dict(cfg):
                cfg.resume = out_dir
    try:
        exp = build(cfg)
    except (ValueError, OSError, InstantiationException) as err:
        # Bad settings or data, found before any training: one clear line, not a traceback.
        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
        raise SystemExit(f"error: {cause}") from None
    try:
        results = execute(exp, out_dir)
    except FloatingPointError as err:  # logged with the way to resume; no traceback needed
        raise SystemExit(f"error: {err}") from None
    return results.metrics()["acc"]  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
