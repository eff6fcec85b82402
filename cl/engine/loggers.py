"""Experiment loggers: Lightning's own, plus what a continual-learning run adds to them.

Per-task metrics are logged with the task index as their step; wandb plots them against a ``task``
axis (``define_metric``), and gets the final metrics in the run summary, the accuracy matrix as a
Table and its heatmap as an image.
"""

import logging
import os
from pathlib import Path

from lightning.pytorch.loggers import Logger, WandbLogger

log = logging.getLogger(__name__)


def _wandb_key_present() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def wandb_logger(save_dir: str, mode: str | None = None, init_timeout: float = 30, **kwargs) -> Logger | None:
    """A WandbLogger that never blocks a run: offline without an API key, offline again if online fails.

    ``mode`` is ``online``, ``offline`` or ``disabled``; by default ``$WANDB_MODE``, else online only
    when an API key is configured. Offline runs are uploaded later with ``wandb sync <dir>``.
    """
    import wandb

    mode = mode or os.environ.get("WANDB_MODE") or ("online" if _wandb_key_present() else "offline")
    for attempt in dict.fromkeys([mode, "offline"]):
        try:
            settings = wandb.Settings(init_timeout=init_timeout, silent=True)
            logger = WandbLogger(save_dir=save_dir, mode=attempt, settings=settings, **kwargs)
            run = logger.experiment  # start now, so a failure shows here and not mid-training
            run.define_metric("task")
            run.define_metric("eval/*", step_metric="task")
            if attempt != mode:
                log.warning("wandb %s mode failed; logging offline to %s", mode, save_dir)
            return logger
        except Exception as err:  # a wandb outage must not cost the run
            log.warning("wandb (%s) could not start: %s", attempt, err)
    log.warning("continuing without wandb")
    return None


def log_task(loggers: list[Logger], task_id: int, names: list[str], row: list[float], extra: dict) -> None:
    metrics = {f"eval/{name}/acc": acc for name, acc in zip(names, row)}
    metrics["eval/seen_mean_acc"] = sum(row[: task_id + 1]) / (task_id + 1)
    metrics.update({f"eval/{k}": v for k, v in extra.items()})
    for logger in loggers:
        logger.log_metrics({**metrics, "task": task_id}, step=task_id)


def log_final(loggers: list[Logger], results, out_dir: str) -> None:
    metrics = {f"final/{k}": v for k, v in results.metrics().items()}
    for logger in loggers:
        logger.log_metrics(metrics, step=len(results.task_names) - 1)
        if isinstance(logger, WandbLogger):
            import wandb

            run = logger.experiment
            run.summary.update({**results.metrics(), "initial_accuracy": results.initial_accuracy})
            rows = [["initial", *results.initial_accuracy]]
            rows += [[f"after {n}", *r] for n, r in zip(results.task_names, results.accuracy_matrix)]
            run.log({"accuracy_matrix": wandb.Table(columns=["after", *results.task_names], data=rows)})
            run.log({"accuracy_heatmap": wandb.Image(str(Path(out_dir) / "accuracy_matrix.png"))})
        logger.save()


def close(loggers: list[Logger], ok: bool) -> None:
    """Finish wandb runs: in a Hydra multirun all jobs share one process, and an unfinished run would
    swallow the next job's metrics."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish(exit_code=0 if ok else 1)
