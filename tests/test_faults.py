"""Faults a user meets: crafted or damaged run folders, stops at any point, signals, two runs at once,
failing sweep jobs, a full disk, settings that only fail late (docs/reliability.md lists them all)."""

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import make_config
from test_resume import FAST, comparable, stop_during

import cl.run
from cl.engine import checkpoint
from cl.engine.loop import ContinualLoop
from cl.engine.module import ContinualModule
from cl.engine.stops import FolderInUse, own_folder
from tasks.cache import write_bytes_atomically

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags before the overrides
    overrides = [a for a in args if not a.startswith("-")]
    cmd = [sys.executable, "-m", "cl.run", *flags, "logger=none", "trainer.enable_progress_bar=false", *overrides]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kwargs)


def stopped_run(run_synthetic, monkeypatch, out: Path, task: int = 1, args=FAST) -> Path:
    stop_during(monkeypatch, task=task)
    with pytest.raises(RuntimeError, match="simulated stop"):
        run_synthetic(*args, out=out)
    monkeypatch.undo()
    return out


class Payload:
    """What an adversary would put in a shared run folder: unpickling it runs code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_is_refused_not_run(run_synthetic, tmp_path, monkeypatch):
    run = stopped_run(run_synthetic, monkeypatch, tmp_path / "run")
    marker = tmp_path / "pwned"
    state = torch.load(run / checkpoint.FILE, weights_only=True)
    torch.save({**state, "extra": Payload(marker)}, run / checkpoint.FILE)
    with pytest.raises(ValueError, match="holds objects other than tensors and plain values.*refused"):
        cl.run.build(make_config(*FAST, f"resume={run}"))
    assert not marker.exists()
    cfg = make_config(*FAST, "skip_done=true")  # the sweep path resumes the same way
    assert cl.run.skip_or_resume(cfg, str(run)) is None and cfg.resume == str(run)
    with pytest.raises(ValueError, match="refused"):
        cl.run.build(cfg)
    assert not marker.exists()


@pytest.mark.parametrize("strategy", ["strategy=naive", "strategy=replay", "strategy=[replay,distill]"])
@pytest.mark.parametrize("where", ["first_task", "evaluation"])
def test_a_stop_anywhere_resumes_to_the_uninterrupted_matrix(strategy, where, run_synthetic, tmp_path, monkeypatch):
    whole = run_synthetic(strategy, *FAST, out=tmp_path / "whole")
    if where == "first_task":
        stop_during(monkeypatch, task=0)
    else:  # after task 0 trained, while its row is being evaluated
        original, calls = ContinualLoop.evaluate, []

        def evaluate(self):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("simulated stop")
            return original(self)

        monkeypatch.setattr(ContinualLoop, "evaluate", evaluate)
    with pytest.raises(RuntimeError, match="simulated stop"):
        run_synthetic(strategy, *FAST, out=tmp_path / "stopped")
    monkeypatch.undo()
    resumed = cl.run.run(make_config(strategy, *FAST, f"resume={tmp_path / 'stopped'}"), str(tmp_path / "x"))
    assert comparable(resumed) == comparable(whole)


def test_resume_without_any_checkpoint_still_matches(run_synthetic, tmp_path, monkeypatch):
    args = [*FAST, "checkpoint=false"]
    whole = run_synthetic(*args, out=tmp_path / "whole")
    run = stopped_run(run_synthetic, monkeypatch, tmp_path / "run", task=0, args=args)
    resumed = cl.run.run(make_config(*args, f"resume={run}"), str(tmp_path / "x"))
    assert comparable(resumed) == comparable(whole)


def test_sigterm_marks_the_run_interrupted_and_exits_non_zero(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["experiment=synthetic", "logger=none", "trainer.max_epochs=40", f"hydra.run.dir={out}"]
    proc = subprocess.Popen([sys.executable, "-m", "cl.run", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the first task is finished and written
        try:
            if json.loads((out / "results.json").read_text())["completed_tasks"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, output[-2000:]
    res = json.loads((out / "results.json").read_text())
    assert res["status"] == "interrupted" and res["error"] == "received SIGTERM" and res["completed_tasks"] >= 1
    assert "run stopped (received SIGTERM)" in output and "resume=" in output


def test_a_folder_owned_by_a_live_run_is_refused(tmp_path):
    with own_folder(tmp_path):
        message = f"run folder {tmp_path} is in use by another live run \\(pid {os.getpid()}"
        with pytest.raises(FolderInUse, match=message), own_folder(tmp_path):
            pass
    with own_folder(tmp_path):  # released when its run ends
        pass


def test_run_folders_are_unique_per_run():
    from omegaconf import OmegaConf

    hydra = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "config.yaml").hydra)  # unresolved
    assert hydra["run"]["dir"].endswith("${now:%Y-%m-%d_%H-%M-%S-%f}") and hydra["sweep"]["dir"].endswith("-%f}")


def test_concurrent_atomic_writes_never_collide(tmp_path):
    errors = []

    def write(k):
        try:
            for i in range(200):
                write_bytes_atomically(tmp_path / "results.json", f"{k}-{i}".encode())
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and list(tmp_path.iterdir()) == [tmp_path / "results.json"]


def test_a_failing_sweep_job_does_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "experiment=synthetic", "optimizer.lr=1e3,3e-3", "trainer.max_epochs=1", "skip_done=true",
            f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=lr${optimizer.lr}"]  # fmt: skip
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 1 and "1 job(s) of the sweep failed" in done.stderr, done.stderr[-2000:]
    bad, good = (json.loads((sweep / f"lr{lr}" / "results.json").read_text()) for lr in ("1000.0", "0.003"))
    assert bad["status"] == "failed" and "loss is nan" in bad["error"]
    assert good["status"] == "finished"
    stamp = (sweep / "lr0.003" / "results.json").stat().st_mtime_ns
    made_with = {p.name: p.read_bytes() for p in (sweep / "lr0.003" / ".hydra").iterdir()}
    again = cli(*args, cwd=tmp_path)  # the rerun skips the finished job and retries the failed one
    assert again.returncode == 1 and (again.stderr + again.stdout).count("finished already") == 1
    assert (sweep / "lr0.003" / "results.json").stat().st_mtime_ns == stamp
    # The same folders under other settings are refused, the finished run's record left as it was.
    before = (sweep / "lr0.003" / "results.json").read_bytes()
    changed = cli(*args, "trainer.gradient_clip_val=0.5", cwd=tmp_path)
    assert changed.returncode == 1 and "with other settings" in changed.stderr
    assert "trainer.gradient_clip_val: 1.0 -> 0.5" in changed.stderr
    assert (sweep / "lr0.003" / "results.json").read_bytes() == before
    # and its Hydra record still says how it was made, not how the later calls were (overrides.yaml)
    assert {p.name: p.read_bytes() for p in (sweep / "lr0.003" / ".hydra").iterdir()} == made_with
    assert (sweep / "lr1000.0" / ".hydra" / "config.yaml").exists()  # a job that runs keeps Hydra's record
    from cl.analysis.report import main as report

    report([str(sweep), "--markdown", str(tmp_path / "report.md")])
    text = (tmp_path / "report.md").read_text()
    assert "runs that did not finish" in text and "lr1000.0 (failed: " in text and "loss is nan" in text


def test_a_sweep_does_not_resume_a_stopped_run_under_other_settings(run_synthetic, tmp_path, monkeypatch):
    # resume= may change the rate for the remaining tasks (recorded); a sweep's skip_done may not,
    # or a re-chosen rate would silently mix two rates in one run
    run = stopped_run(run_synthetic, monkeypatch, tmp_path / "run")
    with pytest.raises(ValueError, match=r"holds a failed run \(1 task\(s\) done\) with other settings.*optimizer.lr"):
        cl.run.skip_or_resume(make_config(*FAST, "skip_done=true", "optimizer.lr=1e-2"), str(run))
    assert cl.run.skip_or_resume(cfg := make_config(*FAST, "skip_done=true"), str(run)) is None and cfg.resume


def test_a_sweep_starts_again_a_stopped_run_that_lost_its_checkpoint(run_synthetic, tmp_path, monkeypatch):
    # results/ committed without the ignored checkpoint.pt and rerun on a fresh clone
    whole = run_synthetic(*FAST, out=tmp_path / "whole")
    run = stopped_run(run_synthetic, monkeypatch, tmp_path / "run")
    (run / checkpoint.FILE).unlink()
    assert cl.run.skip_or_resume(cfg := make_config(*FAST, "skip_done=true"), str(run)) is None
    assert not cfg.get("resume") and (run / "results.json.partial").exists()
    assert comparable(cl.run.run(cfg, str(run))) == comparable(whole)


def test_max_length_is_checked_before_training():
    for value in (0, -1):
        with pytest.raises(ValueError, match=f"stream.max_length must be a positive integer, got {value}"):
            cl.run.build(make_config(f"stream.max_length={value}"))
    with pytest.raises(ValueError, match="stream.max_length=1000 exceeds the 64 positions of model tiny-bert"):
        cl.run.build(make_config("stream.max_length=1000"))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe bad bytes\n", "is not UTF-8"),
        (b"", "is empty"),
        (b"text,label\n", "has a header but no rows"),
        (b"text,label\nhello,\nworld,b\n", "1 row\\(s\\) have an empty 'label' cell \\(the first is data row 1\\)"),
        (b"text,label\n,a\nworld,b\n", "empty 'text' cell"),
    ],
)
def test_bad_csv_files_are_named(tmp_path, content, message):
    from tasks.files import load

    (tmp_path / "data.csv").write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        load(str(tmp_path / "data.csv"))
    assert "data.csv" in str(err.value)  # the file is named


def test_bad_jsonl_line_and_mixed_folders_are_named(tmp_path):
    from tasks.files import load

    (tmp_path / "a.jsonl").write_text('{"text": "x", "label": "a"}\n{"text": "y", "label": \n')
    with pytest.raises(ValueError, match=r"a.jsonl line 2 is not valid JSON"):
        load(str(tmp_path / "a.jsonl"))
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.csv").write_text("text,label\nx,a\n")
    (folder / "b.jsonl").write_text('{"text": "y", "label": "b"}\n')
    with pytest.raises(ValueError, match=r"mixes \['.csv', '.jsonl'\] files"):
        load(str(folder))


def test_leakage_and_near_duplicate_labels_are_warned(tmp_path, caplog):
    from omegaconf import OmegaConf
    from test_stream import WordTokenizer

    from tasks.prepare import prepare_task

    rows = ["text,label"] + [f"text {i % 6},{'pos' if i % 2 else 'pos '}" for i in range(24)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    spec = OmegaConf.create({"source": {"_target_": "tasks.files.load", "train": str(tmp_path / "d.csv")},
                             "test_fraction": 0.5})  # fmt: skip
    with caplog.at_level(logging.WARNING):
        prepare_task("t", spec, WordTokenizer(), 0, 16, cache=False)
    assert "differ only in case or whitespace" in caplog.text
    assert "test texts also occur in its training data (leakage)" in caplog.text


def test_damaged_run_state_is_named(run_synthetic, tmp_path, monkeypatch):
    run = stopped_run(run_synthetic, monkeypatch, tmp_path / "run")
    ckpt = run / checkpoint.FILE
    good = ckpt.read_bytes()
    for damaged in (good[: len(good) // 2], b""):
        ckpt.write_bytes(damaged)
        with pytest.raises(ValueError, match=f"{ckpt} is damaged \\((empty|truncated or not a checkpoint)\\)"):
            cl.run.build(make_config(*FAST, f"resume={run}"))
    ckpt.write_bytes(good)
    results = run / "results.json"
    for text, message in (("{}", "is not a run's results: it lacks"), ("{not json", "is not valid JSON")):
        results.write_text(text)
        with pytest.raises(ValueError, match=f"{results} {message}"):
            cl.run.build(make_config(*FAST, f"resume={run}"))
    # A sweep's rerun (skip_done) keeps the damaged file aside and starts that run again.
    cfg = make_config(*FAST, "skip_done=true")
    assert cl.run.skip_or_resume(cfg, str(run)) is None and not cfg.get("resume")
    assert (run / "results.json.damaged").exists() and not results.exists()


def test_a_full_disk_is_named_and_keeps_the_last_good_state(run_synthetic, tmp_path, monkeypatch):
    original, calls = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 3:  # the checkpoint after task 1 (after: the initial evaluation, task 0)
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as err:
        run_synthetic(*FAST, out=tmp_path / "run")
    monkeypatch.undo()
    assert cl.run.exit_for(err.value).code == f"error: disk full at {tmp_path / 'run' / checkpoint.FILE}"
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["status"] == "failed" and res["error"].startswith("disk full at")
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]  # no partial file left
    state = torch.load(tmp_path / "run" / checkpoint.FILE, weights_only=True)
    assert state["completed_tasks"] == 1  # the last good checkpoint


@pytest.mark.parametrize(
    "override, message",
    [
        ("scheduler.name=nope", "scheduler.name='nope' is not a transformers scheduler"),
        ("trainer.precision=bf17", "trainer settings are invalid: .*bf17"),
        ("trainer.accelerator=gpu", "trainer settings are invalid"),
        ("seed=abc", "seed must be an integer >= 0, got 'abc'"),
        ("seed=-1", "seed must be an integer >= 0, got -1"),
    ],
)
def test_settings_are_checked_before_any_model_or_data(override, message, monkeypatch):
    monkeypatch.setattr("cl.engine.build.load_backbone", lambda *a: pytest.fail("the model was loaded first"))
    with pytest.raises(ValueError, match=message):
        cl.run.build(make_config(override))


def test_a_resumed_run_logs_into_its_own_folder(run_synthetic, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    run = stopped_run(run_synthetic, monkeypatch, tmp_path / "run")
    cl.run.run(make_config(*FAST, f"resume={run}"), str(tmp_path / "elsewhere"))
    assert "resuming" in (run / "run.log").read_text()


def test_freeze_defaults_fit_every_shipped_model(run_synthetic):
    res = run_synthetic("strategy=freeze", "trainer.max_epochs=1", "~stream.tasks.t2")
    assert res.status == "finished" and res.strategy_report[0]["frozen_tensors"] > 0


@pytest.mark.parametrize(
    "strategy", ["strategy=naive", "strategy=mc_dropout", "strategy=[replay,distill]", "strategy=lora"]
)
def test_mid_task_checkpoints_resume_exactly(strategy, run_synthetic, tmp_path, monkeypatch):
    """Two epochs of 4 steps per task, a checkpoint every 3 steps: stopped at step 5 of task 1 (in its
    second epoch), the run continues from step 3 and ends with the uninterrupted run's numbers."""
    args = [strategy, "trainer.max_epochs=2", "~stream.tasks.t2", "mid_task_checkpoint.every_n_steps=3"]
    whole = run_synthetic(*args, out=tmp_path / "whole")
    stop_during(monkeypatch, task=1, step=5)
    with pytest.raises(RuntimeError, match="simulated stop"):
        run_synthetic(*args, out=tmp_path / "stopped")
    monkeypatch.undo()
    saved = tmp_path / "stopped" / "mid_task" / "task1.ckpt"
    assert torch.load(saved, weights_only=True)["global_step"] == 3
    steps, original = [], ContinualModule.training_step
    monkeypatch.setattr(ContinualModule, "training_step", lambda m, b, i: steps.append(1) or original(m, b, i))
    resumed = cl.run.run(make_config(*args, f"resume={tmp_path / 'stopped'}"), str(tmp_path / "x"))
    assert len(steps) == 8 - 3  # only the steps after the mid-task checkpoint were trained again
    assert comparable(resumed) == comparable(whole)
    assert not saved.exists()  # superseded by the task boundary
