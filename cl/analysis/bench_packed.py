"""``python -m cl.analysis.bench --packed``: K LoRA runs trained together over one base
(``cl.engine.packed``) against the same K runs one after another, on the default model and stream.

The runs differ in seed (a pretrained base is the same for every seed); one epoch per task. Both
sides run in this process, alternating over ``rounds``; training seconds are summed from the runs'
own ``train_seconds`` (a packed task's time counts once: its runs share it), whole seconds include
building and evaluating (which packing does not share: each run is scored alone).
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

import cl.run
from cl.analysis.timing import CONFIGS, QUIET, platform_line, table
from cl.engine.packed import run_packed

SETTINGS = [*QUIET, "strategy=lora", "trainer.max_epochs=1", "checkpoint=false"]


def configs(k: int):
    with initialize_config_dir(CONFIGS, version_base="1.3"):
        return [compose("config", overrides=[*SETTINGS, f"seed={s}"]) for s in range(k)]


def alone(k: int, out: Path) -> tuple[float, float]:
    start, train = time.perf_counter(), 0.0
    for i, cfg in enumerate(configs(k)):
        res = cl.run.run(cfg, str(out / f"alone{i}"))
        train += sum(res.train_seconds)
    return train, time.perf_counter() - start


def packed(k: int, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    exps = run_packed(configs(k), [out / f"packed{i}" for i in range(k)])
    return sum(exps[0].results.train_seconds), time.perf_counter() - start


def padding(k: int) -> float:
    """Token positions the packed batches compute (each step's batches padded to their common width)
    over those of the runs alone (each batch at its own width)."""
    from cl.engine.build import build

    exps = [build(cfg) for cfg in configs(k)]
    own = packed = 0
    for t in range(len(exps[0].stream)):
        loaders = [e.stream.train_loader(e.stream.tasks[t].train, e.settings.batch_size, e.cfg.seed * 1000 + t)
                   for e in exps]  # fmt: skip
        for batches in zip(*loaders):
            widths, rows = [b["input_ids"].shape[1] for b in batches], [len(b["labels"]) for b in batches]
            own += sum(w * r for w, r in zip(widths, rows))
            packed += max(widths) * sum(rows)
    return packed / own


def main(doc: str, k: int = 4, rounds: int = 1) -> None:
    found = {"train": [], "whole": []}
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            one_by_one = alone(k, Path(tmp))
            together = packed(k, Path(tmp))
        for i, name in enumerate(found):
            found[name].append(one_by_one[i] / together[i])
        print(f"round {r + 1}: one by one {one_by_one}, packed {together}", flush=True)
    rows = [(f"{k} LoRA runs, training: one by one / packed", f"{statistics.median(found['train']):.2f} "
             f"(rounds {[round(x, 2) for x in found['train']]})", "", None),
            (f"{k} LoRA runs, whole runs: one by one / packed", f"{statistics.median(found['whole']):.2f} "
             f"(rounds {[round(x, 2) for x in found['whole']]})", "", None),
            ("token positions computed, packed / one by one (shared padding)", f"{padding(k):.3f}", "", None)]  # fmt: skip
    text = "\n".join(["# Packed LoRA runs", "", f"Made by `python -m cl.analysis.bench --packed` on {platform_line()}: "
                      f"{k} runs of `strategy=lora` (seeds 0-{k - 1}, one epoch per task) on the default stream.", "",
                      table(rows)])  # fmt: skip
    sys.stdout.write(text)
    Path(doc).parent.mkdir(parents=True, exist_ok=True)
    Path(doc).write_text(text)
