"""How a run stops before its end, and what it leaves: the run folder it owns, the signals that stop
it, and one line that says why.

- A run folder belongs to one live run at a time: ``own_folder`` holds an exclusive lock on
  ``<folder>/.lock`` while the run writes there (the lock dies with the process, even on SIGKILL).
- SIGTERM (SLURM preemption, ``docker stop``, ``kill``) raises ``Terminated`` wherever the run is,
  so the run is marked ``interrupted`` and exits non-zero; Lightning alone would exit 0 after it.
- A full disk is named as such, with the path it could not write.
"""

import errno
import fcntl
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("cl")

LOCK = ".lock"


class Terminated(Exception):
    """The process received a termination signal."""

    def __init__(self, signum: int):
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = signum


class FolderInUse(ValueError):
    pass


@contextmanager
def own_folder(folder: str | Path) -> Iterator[None]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            raise FolderInUse(
                f"run folder {folder} is in use by another live run ({owner}): two runs must not write one folder; "
                f"give this run its own hydra.run.dir, or wait for the other to end"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def terminate_on_signals(signals=(signal.SIGTERM,)) -> Iterator[None]:
    """Raise ``Terminated`` on ``signals`` while the block runs (Lightning's own handler, installed
    during training, calls this one too)."""

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def log_to(path: Path, formatter: logging.Formatter | None = None) -> Iterator[None]:
    """Also write this process's log to ``path`` (appending) while the block runs: a resumed run's
    log continues in the folder of the run it continues."""
    handler = logging.FileHandler(path, mode="a")
    root = logging.getLogger()
    handler.setFormatter(formatter or next((h.formatter for h in root.handlers if h.formatter), None))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno == errno.ENOSPC


def why(err: BaseException) -> tuple[str, str]:
    """``(status, reason)`` for a run stopped by ``err``. Lightning turns Ctrl+C during training into
    ``SystemExit(1)``; its own SIGTERM handling raises a ``SystemExit`` subclass."""
    if isinstance(err, Terminated):
        return "interrupted", str(err)
    if isinstance(err, KeyboardInterrupt | SystemExit):
        return "interrupted", "interrupted (Ctrl+C)" if not str(err) or str(err) == "1" else str(err)
    if disk_full(err):
        return "failed", f"disk full at {err.filename or 'the run folder'}"
    return "failed", f"{type(err).__name__}: {err}"
