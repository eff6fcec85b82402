"""Try every bad input and fault we know a user meets, through the command line a user types, and
write what happened into docs/reliability.md (between the ``faults`` markers).

    python scripts/faults.py            # about 6 minutes on 2 CPU cores; needs the MiniLM package once

Each case records the exit code, the message the user sees (the last line of the output), the run's
status in results.json, and, for faults during a run, whether the tasks finished before the fault
were kept. A case fails the script if it ends in a traceback with no ``error:`` line, or if finished
results were lost.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
BASE = ["experiment=synthetic", "logger=none", "trainer.enable_progress_bar=false", "trainer.max_epochs=1"]


@dataclass
class Outcome:
    code: int
    message: str
    status: str = "-"
    kept: str = "-"
    traceback: bool = False


@dataclass
class Case:
    group: str
    name: str
    args: list[str]
    setup: object = None  # callable(work: Path) -> list[str] extra args (files it made, folders)
    fault: object = None  # callable(proc, out: Path) run while the command runs
    check: object = None  # callable(work: Path, out: Path, outcome: Outcome) -> None, sets kept
    base: list[str] = field(default_factory=lambda: list(BASE))


def run(args: list[str], cwd: Path, out: Path, fault=None, timeout: int = 300, python: list[str] | None = None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "0"}
    cmd = python or [sys.executable, "-m", "cl.run"]
    flags = [a for a in args if a.startswith("-")]
    overrides = [a for a in args if not a.startswith("-")]
    has_dir = any(a.startswith(("hydra.run.dir", "hydra.sweep.dir")) for a in args)
    cmd = [*cmd, *flags, *overrides, *([] if has_dir else [f"hydra.run.dir={out}"])]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if fault:
        fault(proc, out)
    text, _ = proc.communicate(timeout=timeout)
    return proc.returncode, text


def message_of(text: str) -> tuple[str, bool]:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and "HYDRA_FULL_ERROR" not in line]
    errors = [line for line in lines if line.startswith("error:") or "Could not find" in line]
    stopped = [line for line in lines if "run stopped (" in line]
    warned = [line for line in lines if "WARNING" in line and ("[cl" in line or "[tasks" in line)]
    chosen = errors or stopped or warned or lines[-1:] or [""]
    line = re.sub(r"^\[[^\]]*\]\[[^\]]*\]\[[A-Z]+\] - ", "", chosen[-1])
    return line, "Traceback (most recent call last)" in text and not errors and not stopped


def status_of(out: Path) -> str:
    try:
        res = json.loads((out / "results.json").read_text())
        return f"{res.get('status')} ({res.get('completed_tasks')} tasks)"
    except (OSError, ValueError):
        return "-"


def wait_for_tasks(out: Path, n: int, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if json.loads((out / "results.json").read_text())["completed_tasks"] >= n:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)


def send_after_tasks(sig: int, tasks: int):
    def fault(proc, out):
        wait_for_tasks(out, tasks)
        time.sleep(0.3)
        proc.send_signal(sig)

    return fault


def kept_tasks(before: int):
    def check(work, out, outcome):
        try:
            res = json.loads((out / "results.json").read_text())
            outcome.kept = "yes" if res["completed_tasks"] >= before else f"NO ({res['completed_tasks']})"
        except (OSError, ValueError, KeyError):
            outcome.kept = "NO (no results)"

    return check


# ---- setups: each makes what its case needs inside the case's work folder -------------------------
def write(name: str, content: bytes):
    def setup(work: Path) -> list[str]:
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return [f"stream.tasks.first.source.train={path}"]

    return setup


def mixed_folder(work: Path) -> list[str]:
    (work / "mixed").mkdir()
    (work / "mixed" / "a.csv").write_text("text,label\nx,a\ny,b\n")
    (work / "mixed" / "b.jsonl").write_text('{"text": "z", "label": "a"}\n')
    return [f"stream.tasks.first.source.train={work / 'mixed'}"]


def good_rows(n: int = 40, labels=("a", "b")) -> bytes:
    return ("text,label\n" + "".join(f"sample text number {i},{labels[i % len(labels)]}\n" for i in range(n))).encode()


def leaky(work: Path) -> list[str]:
    rows = "text,label\n" + "".join(f"same text {i % 5},{'ab'[i % 2]}\n" for i in range(40))
    (work / "leak.csv").write_text(rows)
    return [f"stream.tasks.first.source.train={work / 'leak.csv'}"]


def stopped_run(work: Path, *extra: str) -> Path:
    """A run stopped by SIGKILL after its first task: what a preempted or crashed run leaves."""
    out = work / "stopped"
    run([*BASE, "trainer.max_epochs=30", *extra], work, out, fault=send_after_tasks(signal.SIGKILL, 1))
    return out


def resume_from(damage=None, *extra: str):
    def setup(work: Path) -> list[str]:
        out = stopped_run(work)
        if damage:
            damage(out)
        return [f"resume={out}", "trainer.max_epochs=30", *extra]

    return setup


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cl-faults-pwned",))


def crafted(out: Path) -> None:
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    torch.save({**state, "x": Payload()}, out / "checkpoint.pt")


def truncated(out: Path) -> None:
    data = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(data[: len(data) // 2])


def two_at_once(proc, out):
    time.sleep(1.5)
    other = subprocess.run([sys.executable, "-m", "cl.run", *BASE, f"hydra.run.dir={out}"], cwd=out.parent,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip
    (out.parent / "second.txt").write_text(f"{other.returncode}\n{message_of(other.stdout + other.stderr)[0]}")


DISK_FULL = """
import errno, sys, torch
save, calls = torch.save, []
def full(obj, f, *a, **k):
    calls.append(f)
    if len(calls) == 3:
        open(f, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    return save(obj, f, *a, **k)
torch.save = full
import runpy
sys.argv = ["cl.run", *sys.argv[1:]]
runpy.run_module("cl.run", run_name="__main__")
"""

FILES = ["stream=files", "model=minilm", "stream.tasks.first.test_fraction=0.25"]
CASES = [
    Case("settings", "unknown strategy", ["strategy=nope"]),
    Case("settings", "unknown model", ["model=nope"]),
    Case("settings", "unknown stream", ["stream=nope"]),
    Case("settings", "negative learning rate", ["optimizer.lr=-1"]),
    Case("settings", "learning rate not a number", ["optimizer.lr=abc"]),
    Case("settings", "batch size 0", ["batch_size=0"]),
    Case("settings", "epochs not a number", ["trainer.max_epochs=two"]),
    Case("settings", "warmup ratio 2", ["scheduler.warmup_ratio=2"]),
    Case("settings", "unknown scheduler", ["scheduler.name=nope"]),
    Case("settings", "unknown precision", ["trainer.precision=bf17"]),
    Case("settings", "GPU asked for, none present", ["trainer.accelerator=gpu"]),
    Case("settings", "seed not a number", ["seed=abc"]),
    Case("settings", "negative seed", ["seed=-1"]),
    Case("settings", "max_length 0", ["stream.max_length=0"]),
    Case("settings", "max_length -1", ["stream.max_length=-1"]),
    Case("settings", "max_length beyond the model's positions", ["stream.max_length=1000"]),
    Case("settings", "task order not a permutation", ["stream.order=[0,0,1]"]),
    Case("settings", "unknown scenario", ["stream.scenario=both"]),
    Case("settings", "distill alpha 1.5", ["strategy=distill", "strategy.distill.alpha=1.5"]),
    Case("settings", "distill temperature 0", ["strategy=distill", "strategy.distill.temperature=0"]),
    Case("settings", "replay memory -5", ["strategy=replay", "strategy.replay.memory_size=-5"]),
    Case("settings", "misspelt strategy setting", ["strategy=replay", "+strategy.replay.memory=5"]),
    Case("settings", "LoRA target module not in the model", ["strategy=lora", "strategy.lora.target_modules=[nope]"]),
    Case("settings", "LoRA isolation without task ids", ["strategy=lora", "stream.scenario=class"]),
    Case("settings", "freeze more layers than the model has", ["strategy=freeze", "strategy.freeze.layers=9"]),
    Case("settings", "freeze default on the 2-layer test model", ["strategy=freeze"]),
    Case("settings", "mid-task checkpoint every 0 steps", ["mid_task_checkpoint.every_n_steps=0"]),
    Case("settings", "model folder that does not exist", ["model=minilm", "model.path=./no/such/model"]),
    Case(
        "settings",
        "QLoRA on a machine without CUDA",
        ["experiment=synthetic_lm", "strategy=lora", "+model.quantization=nf4"],
    ),
    Case("data", "data file that does not exist", [*FILES, "stream.tasks.first.source.train=/no/such.csv"]),
    Case("data", "empty file", FILES, setup=write("empty.csv", b"")),
    Case("data", "header-only CSV", FILES, setup=write("header.csv", b"text,label\n")),
    Case("data", "file not UTF-8", FILES, setup=write("latin1.csv", b"text,label\ncaf\xe9,a\n")),
    Case("data", "empty label cell", FILES, setup=write("nolabel.csv", good_rows() + b"one more,\n")),
    Case("data", "empty text cell", FILES, setup=write("notext.csv", good_rows() + b",a\n")),
    Case(
        "data",
        "malformed JSONL line",
        FILES,
        setup=write("bad.jsonl", b'{"text": "x", "label": "a"}\n{"text": "y", "label": \n'),
    ),
    Case("data", "folder mixing CSV and JSONL", FILES, setup=mixed_folder),
    Case(
        "data",
        "missing label column",
        [*FILES, "stream.tasks.first.source.label_column=tag"],
        setup=write("ok.csv", good_rows()),
    ),
    Case("data", "a single class", FILES, setup=write("one.csv", good_rows(labels=("a",)))),
    Case(
        "data",
        "labels differing only in whitespace (warned)",
        FILES,
        setup=write("near.csv", good_rows(labels=("pos", "pos "))),
    ),
    Case("data", "texts in both train and test (warned)", FILES, setup=leaky),
    Case("run", "NaN loss", ["optimizer.lr=1e3"], check=kept_tasks(0)),
    Case(
        "run",
        "SIGTERM (SLURM preemption, docker stop) after task 1",
        ["trainer.max_epochs=30"],
        fault=send_after_tasks(signal.SIGTERM, 1),
        check=kept_tasks(1),
    ),
    Case(
        "run",
        "Ctrl+C (SIGINT) after task 1",
        ["trainer.max_epochs=30"],
        fault=send_after_tasks(signal.SIGINT, 1),
        check=kept_tasks(1),
    ),
    Case("run", "SIGKILL after task 1, then resume", [], setup=resume_from(), check=kept_tasks(3)),
    Case(
        "run",
        "SIGKILL mid-task with mid-task checkpoints, then resume",
        [],
        setup=lambda w: [
            f"resume={stopped_run(w, 'mid_task_checkpoint.every_n_steps=2')}",
            "trainer.max_epochs=30",
            "mid_task_checkpoint.every_n_steps=2",
        ],
        check=kept_tasks(3),
    ),  # fmt: skip
    Case("run", "two runs given one folder", ["trainer.max_epochs=30"], fault=two_at_once),
    Case("run", "disk full while writing a checkpoint", [], check=kept_tasks(1), base=[*BASE, "~stream.tasks.t2"]),
    Case("resume", "resume a folder that does not exist", ["resume=/no/such/run"]),
    Case("resume", "resume a finished run", [], setup=lambda w: [f"resume={finished(w)}"]),
    Case("resume", "resume with a different stream setting", [], setup=resume_from(None, "stream.max_length=20")),
    Case(
        "resume",
        "resume with a lower learning rate (allowed, recorded)",
        [],
        setup=resume_from(None, "optimizer.lr=1e-3"),
        check=kept_tasks(3),
    ),
    Case("resume", "crafted checkpoint.pt (code in a pickle)", [], setup=resume_from(crafted)),
    Case("resume", "truncated checkpoint.pt", [], setup=resume_from(truncated)),
    Case("resume", "empty checkpoint.pt", [], setup=resume_from(lambda o: (o / "checkpoint.pt").write_bytes(b""))),
    Case("resume", "results.json is {}", [], setup=resume_from(lambda o: (o / "results.json").write_text("{}"))),
    Case(
        "resume",
        "results.json is not JSON",
        [],
        setup=resume_from(lambda o: (o / "results.json").write_text("{not json")),
    ),
    Case(
        "sweep",
        "sweep rerun over a damaged results.json (skip_done)",
        [],
        setup=lambda w: damaged_sweep(w),
        check=kept_tasks(3),
    ),
    Case(
        "sweep",
        "sweep rerun over a stopped run whose checkpoint.pt is gone (skip_done; a clone of committed results)",
        [],
        setup=lambda w: lost_checkpoint_sweep(w),
        check=kept_tasks(3),
    ),
    Case(
        "sweep",
        "one failing job in a sweep",
        ["-m", "optimizer.lr=1e3,3e-3", "skip_done=true"],
        setup=lambda w: [f"hydra.sweep.dir={w / 'sweep'}", "hydra.sweep.subdir=lr${optimizer.lr}"],
    ),
]


def finished(work: Path) -> Path:
    out = work / "done"
    run(BASE, work, out)
    return out


def damaged_sweep(work: Path) -> list[str]:
    out = work / "job"
    run([*BASE, "skip_done=true"], work, out)
    (out / "results.json").write_text("{broken")
    return ["skip_done=true", f"hydra.run.dir={out}"]


def lost_checkpoint_sweep(work: Path) -> list[str]:
    out = stopped_run(work, "skip_done=true")
    (out / "checkpoint.pt").unlink()  # ignored by git: a fresh clone of the results has none
    return ["skip_done=true", "trainer.max_epochs=30", f"hydra.run.dir={out}"]


def run_case(case: Case) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix="cl-fault-"))
    out = work / "run"
    try:
        extra = case.setup(work) if case.setup else []
        args = [*case.base, *case.args, *extra]
        python = [sys.executable, "-c", DISK_FULL] if case.name.startswith("disk full") else None
        code, text = run(args, work, out, case.fault, python=python)
        if any(a.startswith("resume=") for a in extra):
            out = Path(next(a for a in extra if a.startswith("resume=")).split("=", 1)[1])
        elif any(a.startswith("hydra.run.dir=") for a in extra):
            out = Path(next(a for a in extra if a.startswith("hydra.run.dir=")).split("=", 1)[1])
        message, traceback = message_of(text)
        if case.fault is two_at_once:
            second = (work / "second.txt").read_text().split("\n", 1)
            message = f"second run: exit {second[0]}, {second[1]}"
        outcome = Outcome(code, message, status_of(out), traceback=traceback)
        if case.check:
            case.check(work, out, outcome)
        return outcome
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:230]


def main() -> None:
    rows, bad = [], []
    for i, case in enumerate(CASES, 1):
        start = time.time()
        o = run_case(case)
        print(f"[{i}/{len(CASES)}] {case.name}: exit {o.code} ({time.time() - start:.0f}s) {o.message}", flush=True)
        if o.traceback or o.kept.startswith("NO") or os.path.exists("/tmp/cl-faults-pwned"):
            bad.append(case.name)
        rows.append(f"| {case.group} | {cell(case.name)} | {o.code} | {cell(o.message)} | {o.status} | {o.kept} |")
    table = "\n".join(["| kind | case | exit | what the user sees (last line) | results.json | finished tasks kept |",
                       "|---|---|---|---|---|---|", *rows])  # fmt: skip
    doc = DOC.read_text()
    begin, end = "<!-- faults:begin -->", "<!-- faults:end -->"
    head, rest = doc.split(begin)
    doc = f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"
    DOC.write_text(doc)
    print(f"wrote {len(rows)} cases to {DOC}; problems: {bad or 'none'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
