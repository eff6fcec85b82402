"""What both benchmarks share: an experiment built from the configs, a step clock, the table."""

import os
import platform
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from cl.engine.build import build
from cl.engine.loop import Experiment

CONFIGS = str(Path(__file__).resolve().parents[2] / "configs")  # the repository's configs/
QUIET = ["logger=none", "trainer.enable_progress_bar=false"]


def experiment(*overrides: str) -> Experiment:
    with initialize_config_dir(CONFIGS, version_base="1.3"):
        exp = build(compose("config", overrides=[*QUIET, *overrides]))
    exp.settings.checkpoints = False  # the benchmark times training, not writing
    return exp


class StepClock(L.Callback):
    """Seconds between successive batch starts: data loading, forward, backward, optimizer, hooks."""

    def __init__(self):
        self.starts: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, *args) -> None:
        self.starts.append(time.perf_counter())

    def steps(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


def table(rows: list[tuple[str, str, str, bool | None]]) -> str:
    lines = ["| measure | value | target | pass |", "|---|---|---|---|"]
    for name, value, target, ok in rows:
        lines.append(f"| {name} | {value} | {target} | {'' if ok is None else ('yes' if ok else 'NO')} |")
    return "\n".join(lines) + "\n"


def platform_line() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"
