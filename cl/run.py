"""``python -m cl.run``: train a model through a stream of tasks with the chosen strategies.

The Hydra entry point: builds the experiment (``cl.engine.build``), runs its task loop, and turns a
stop (bad settings, NaN loss, Ctrl+C, crash) into a marked, resumable run folder.

Examples::

    python -m cl.run                                   # the embedded real benchmark, naive fine-tuning
    python -m cl.run experiment=synthetic logger=none seed=3 trainer.max_epochs=1
    python -m cl.run -m strategy=naive seed=0,1,2       # a Hydra multirun sweep
    python -m cl.run experiment=synthetic resume=outputs/synthetic/naive/seed0/<time>   # continue a stopped run
"""

import logging
import os
import signal
import warnings
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from cl.engine import checkpoint
from cl.engine.build import build, build_loggers
from cl.engine.loggers import close as close_loggers
from cl.engine.loop import ContinualLoop, Experiment
from cl.engine.results import RunResults

log = logging.getLogger("cl")

# Every task builds two Trainers; their start-up banners (accelerator, tips) would drown the
# per-task lines, so keep those loggers to warnings.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


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
    loop = ContinualLoop(exp, out_dir, loggers)
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
        raise SystemExit(f"error: {err}") from None
    try:
        results = execute(exp, out_dir)
    except FloatingPointError as err:  # logged with the way to resume; no traceback needed
        raise SystemExit(f"error: {err}") from None
    return results.metrics()["acc"]  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
