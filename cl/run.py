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
import math
import os
import signal
import warnings
from contextlib import nullcontext
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from cl.engine import checkpoint
from cl.engine.build import build, build_loggers
from cl.engine.loggers import close as close_loggers
from cl.engine.loop import ContinualLoop, Experiment
from cl.engine.results import RunResults
from cl.engine.stops import Terminated, disk_full, log_to, own_folder, terminate_on_signals, why
from cl.engine.sweeps import failed_job

log = logging.getLogger("cl")

# Every task builds two Trainers; their start-up banners (accelerator, tips) would drown the
# per-task lines, so keep those loggers to warnings.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def execute(exp: Experiment, out_dir: str) -> RunResults:
    """Run the experiment's loop in ``out_dir`` (or the folder it resumes), which it owns meanwhile.
    A stop of any kind leaves the finished tasks on disk, the run marked, and the reason logged."""
    cfg, stream, results = exp.cfg, exp.stream, exp.results
    out_dir = exp.resume_dir or out_dir
    first = rank_zero_only.rank == 0  # in a multi-process run, rank 0 owns the folder and writes
    owned = own_folder(out_dir) if first else nullcontext()
    resumed_log = log_to(Path(out_dir) / "run.log") if exp.resume_dir and first else nullcontext()
    with owned, resumed_log, terminate_on_signals():
        if exp.resume_dir:
            log.info("resuming %s after %d finished tasks", out_dir, results.completed_tasks)
        log.info(
            "stream %s (%s-incremental): %s (train/%s) | strategy %s | model %s",
            stream.name, stream.scenario,
            ", ".join(f"{t.name} {len(t.train)}/{len(stream.scored_split(t))}" for t in stream.tasks),
            stream.evaluate_on, results.strategy, cfg.model.name,
        )  # fmt: skip
        loggers = build_loggers(cfg)
        try:
            ContinualLoop(exp, out_dir, loggers).run()
        except BaseException as err:
            record_stop(results, err, out_dir)
            close_loggers(loggers, ok=False)
            raise
        close_loggers(loggers, ok=True)
        if not cfg.keep_checkpoint:  # a finished run needs no resuming; its weights are large
            (Path(out_dir) / checkpoint.FILE).unlink(missing_ok=True)
    log.info("accuracy matrix (rows: after training on; columns: evaluated on)\n%s", results.table())
    log.info("results in %s", out_dir)
    return results


def record_stop(results: RunResults, err: BaseException, out_dir: str) -> None:
    """Mark the run ``interrupted`` or ``failed`` with the reason, keeping its finished tasks."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores further Ctrl+C
    results.status, results.error = why(err)
    if rank_zero_only.rank == 0:
        try:
            results.save(out_dir)
        except OSError as save_err:  # e.g. the disk is still full: the last good results stay on disk
            log.error("could not record the stop in %s: %s", out_dir, why(save_err)[1])
    quiet = isinstance(err, KeyboardInterrupt | SystemExit | Terminated | FloatingPointError) or disk_full(err)
    (log.error if quiet else log.exception)(
        "run stopped (%s) after %d finished tasks; results so far in %s; continue it with resume=%s",
        results.error, results.completed_tasks, out_dir, out_dir,
    )  # fmt: skip


def run(cfg: DictConfig, out_dir: str) -> RunResults:
    return execute(build(cfg), out_dir)


def exit_for(err: BaseException) -> SystemExit | None:
    """The exit for a stop whose cause has been logged: one line and a non-zero code, no traceback."""
    if isinstance(err, Terminated):
        return SystemExit(128 + err.signum)  # the shell's convention for "killed by a signal"
    if isinstance(err, ValueError | OSError | InstantiationException | FloatingPointError):
        return SystemExit(f"error: {why(err)[1] if disk_full(err) else err}")
    return None


def skip_or_resume(cfg: DictConfig, out_dir: str) -> float | None:
    """Sweeps write to fixed folders (``skip_done=true``): skip a finished run, resume a stopped one,
    and start again a folder whose results are damaged (kept aside under another name)."""
    if not (Path(out_dir) / "results.json").exists():
        return None
    try:
        previous = RunResults.load(out_dir)
    except ValueError as err:
        for name in ("results.json", checkpoint.FILE):
            if (Path(out_dir) / name).exists():
                os.replace(Path(out_dir) / name, Path(out_dir) / f"{name}.damaged")
        log.warning("%s; kept as results.json.damaged, starting the run again", err)
        return None
    # A sweep folder is one run's: the same folder under other settings (a re-chosen rate, an edited
    # config) is not that run, and neither skipping it nor resuming it under the new settings is honest.
    diff = checkpoint.differences(previous.config, OmegaConf.to_container(cfg, resolve=True))
    if diff and (previous.status == "finished" or previous.completed_tasks > 0):
        raise ValueError(
            f"{out_dir} holds a {previous.status} run ({previous.completed_tasks} task(s) done) with other "
            f"settings (saved -> now: {'; '.join(diff[:10])}); "
            "skip_done=true reuses only a run of the same settings: move or delete that folder to run it "
            "with these settings, or sweep into another folder"
        )
    if previous.status == "finished":
        log.info("skipping %s: finished already", out_dir)
        return previous.metrics()["acc"]
    if previous.completed_tasks and not (Path(out_dir) / checkpoint.FILE).exists():
        # The folder came without its checkpoint (copied or committed without it, or checkpoint=false):
        # the run cannot resume, and failing would stop this job at every rerun of the sweep. Runs are
        # deterministic, so starting again gives the numbers an uninterrupted run gives.
        os.replace(Path(out_dir) / "results.json", Path(out_dir) / "results.json.partial")
        log.warning("%s: %d task(s) done but no %s to resume from; kept as results.json.partial, starting the "
                    "run again", out_dir, previous.completed_tasks, checkpoint.FILE)  # fmt: skip
        return None
    if not cfg.get("resume"):
        with open_dict(cfg):
            cfg.resume = out_dir
    return None


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if cfg.offline else None
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    out_dir = HydraConfig.get().runtime.output_dir
    sweeping = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        if cfg.get("skip_done") and (done := skip_or_resume(cfg, out_dir)) is not None:
            return done
        try:
            exp = build(cfg)
        except (ValueError, OSError, InstantiationException) as err:
            # Bad settings or data, found before any training: one clear line, not a traceback.
            raise SystemExit(f"error: {err}") from None
        return execute(exp, out_dir).metrics()["acc"]  # the value a Hydra sweeper optimises
    except (Exception, SystemExit) as err:
        stop = exit_for(err) or err
        if sweeping and not isinstance(err, Terminated) and not (isinstance(err, SystemExit) and err.code == 1):
            # One job's failure must not abort the sweep: record it in its folder and go on; the
            # sweep's exit code says that jobs failed (FailedJobs).
            failed_job(out_dir, cfg, stop.code if isinstance(stop, SystemExit) else str(err))
            return math.nan
        raise stop from None


if __name__ == "__main__":
    main()
