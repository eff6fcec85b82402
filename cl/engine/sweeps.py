"""Hydra multiruns that outlive a failing job: the job's failure is written into its own folder, the
sweep goes on, and its exit code says that jobs failed (``FailedJobs``, a Hydra callback set in
``configs/config.yaml``). With ``skip_done=true`` a rerun retries the failed jobs and skips the
finished ones, and leaves their folders' Hydra records (``.hydra/``) as the run wrote them."""

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from tasks.cache import write_bytes_atomically

log = logging.getLogger("cl")

FAILED: list[str] = []  # this process's failed jobs: "folder: reason"


def hydra_subdir(skip_done: bool, out_dir: str) -> str | None:
    """``hydra.output_subdir``: where Hydra saves a job's config, resolved as the job starts. None (save
    nothing) for a folder whose finished run ``skip_done`` will skip: Hydra would otherwise replace the
    config that run was made with by the skipping call's (settings added since, another sweep's overrides)."""
    if skip_done:
        try:
            if json.loads((Path(out_dir) / "results.json").read_text()).get("status") == "finished":
                return None
        except (OSError, ValueError):
            pass  # no run there, or a damaged record that the run will set aside
    return ".hydra"


OmegaConf.register_new_resolver("cl.hydra_subdir", hydra_subdir, replace=True)


def failed_job(out_dir: str, cfg: DictConfig, reason: str) -> None:
    """Record a job's failure. A run that got as far as results has marked them already; one that
    failed before (bad settings or data) gets a results.json that says so, for skip_done and cl.report."""
    FAILED.append(f"{out_dir}: {reason}")
    log.error("job failed, the sweep goes on: %s", reason)
    path = Path(out_dir) / "results.json"
    try:
        if path.exists() and json.loads(path.read_text()).get("status"):
            return  # the run's own record (or a finished run that skip_done refused) is never overwritten
    except (ValueError, OSError):
        pass
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # the config itself may be what failed
        config = OmegaConf.to_container(cfg, resolve=False)
    record = {"status": "failed", "error": reason, "completed_tasks": 0, "config": config}
    write_bytes_atomically(path, json.dumps(record, indent=2, default=str).encode())


class FailedJobs(Callback):
    """At the end of a multirun, list the jobs that failed and exit non-zero if any did."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        FAILED.clear()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if FAILED:
            lines = "\n  ".join(FAILED)
            raise SystemExit(f"error: {len(FAILED)} job(s) of the sweep failed:\n  {lines}")
