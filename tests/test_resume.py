"""Checkpoints at task boundaries: a run stopped mid-task and resumed ends exactly as if never stopped."""

import json

import pytest
import torch
from conftest import make_config

import cl.run
from cl.engine import checkpoint
from cl.engine.module import ContinualModule

REHEARSE = (
    "+stream.rehearsal={r5: {type: generate, source: {_target_: tasks.synthetic.response_task, task_index: 5}, "
    "train_examples: 32, test_examples: 1}}"
)
STRATEGIES = {
    "naive": ["strategy=naive"],
    "joint": ["strategy=joint"],
    "low_lr": ["strategy=low_lr"],
    "freeze": ["strategy=freeze", "strategy.freeze.layers=1"],
    "mc_dropout": ["strategy=mc_dropout"],
    "replay": ["strategy=replay"],
    "step_matched": ["strategy=step_matched"],
    "single_task": ["strategy=single_task"],
    "distill": ["strategy=distill"],
    "lora": ["strategy=lora"],
    "lora_shared": ["strategy=lora", "strategy.lora.mode=shared"],
    "olora": ["strategy=olora"],
    "routed_lora": ["strategy=routed_lora", "stream.scenario=class"],
    "lm_general_replay": ["experiment=synthetic_lm", "strategy=general_replay", REHEARSE],
    "replay_distill": ["strategy=[replay,distill]"],
    "lm_replay_distill": ["experiment=synthetic_lm", "strategy=[replay,distill]"],
    "lm_prefix": ["experiment=synthetic_lm", "strategy=lora", "strategy.lora.method=prefix"],
}
FAST = ["trainer.max_epochs=1", "~stream.tasks.t2"]  # two tasks: stop in the second, resume
THREE = ["trainer.max_epochs=1"]


def stop_during(monkeypatch, task: int, step: int = 1, error=RuntimeError) -> None:
    """Make training raise at ``step`` of ``task``: the weights have moved past the last checkpoint."""
    original = ContinualModule.training_step

    def training_step(self, batch, batch_idx):
        if self.task_id == task and self.global_step == step:
            raise error("simulated stop")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ContinualModule, "training_step", training_step)


def comparable(res) -> dict:
    timing = ("teacher_seconds",)
    reports = [{k: v for k, v in r.items() if k not in timing} for r in res.strategy_report]
    return {"initial": res.initial_accuracy, "matrix": res.accuracy_matrix, "reports": reports,
            "trainable": res.trainable_params, "examples": res.train_examples}  # fmt: skip


@pytest.mark.parametrize("name", STRATEGIES)
def test_resumed_run_matches_the_uninterrupted_one(name, run_synthetic, tmp_path, monkeypatch):
    args = STRATEGIES[name]
    whole = run_synthetic(*args, *FAST, out=tmp_path / "whole")

    stop_during(monkeypatch, task=1)
    with pytest.raises(RuntimeError, match="simulated stop"):
        run_synthetic(*args, *FAST, out=tmp_path / "stopped")
    monkeypatch.undo()
    saved = json.loads((tmp_path / "stopped" / "results.json").read_text())
    assert saved["status"] == "failed" and saved["completed_tasks"] == 1
    assert (tmp_path / "stopped" / checkpoint.FILE).exists()

    resumed = cl.run.run(make_config(*args, *FAST, f"resume={tmp_path / 'stopped'}"), str(tmp_path / "elsewhere"))
    assert resumed.status == "finished" and resumed.resumed_after == [1]
    assert comparable(resumed) == comparable(whole)
    assert resumed.metrics() == whole.metrics()
    on_disk = json.loads((tmp_path / "stopped" / "results.json").read_text())  # written where it started
    assert on_disk["status"] == "finished" and on_disk["accuracy_matrix"] == whole.accuracy_matrix
    assert not (tmp_path / "stopped" / checkpoint.FILE).exists()  # removed once finished


def test_ctrl_c_keeps_finished_tasks_resumable(run_synthetic, tmp_path, monkeypatch):
    stop_during(monkeypatch, task=2, error=KeyboardInterrupt)
    with pytest.raises(SystemExit):  # Lightning's graceful shutdown after Ctrl+C
        run_synthetic(*THREE, out=tmp_path / "run")
    monkeypatch.undo()
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["status"] == "interrupted" and res["completed_tasks"] == 2
    resumed = cl.run.run(make_config(*THREE, f"resume={tmp_path / 'run'}"), str(tmp_path / "x"))
    assert resumed.completed_tasks == 3 and resumed.accuracy_matrix[:2] == res["accuracy_matrix"]


def test_lora_checkpoint_holds_adapters_and_heads_not_the_base(run_synthetic, tmp_path, monkeypatch):
    stop_during(monkeypatch, task=2)
    with pytest.raises(RuntimeError):
        run_synthetic("strategy=lora", *THREE, out=tmp_path / "run")
    state = torch.load(tmp_path / "run" / checkpoint.FILE, weights_only=False)
    params = [k for k in state["module"] if "lora_" in k or "heads" in k]
    assert state["completed_tasks"] == 2 and any("task1" in k for k in params)
    assert not [k for k in state["module"] if k.endswith("query.base_layer.weight")]


def test_results_ahead_of_the_checkpoint_are_redone(run_synthetic, tmp_path, monkeypatch):
    # A crash between writing results.json and checkpoint.pt leaves the results one task ahead.
    original = checkpoint.save

    def save_only_the_first(out, module, callbacks, done, trained):
        if done == 1:
            original(out, module, callbacks, done, trained)

    monkeypatch.setattr(checkpoint, "save", save_only_the_first)
    stop_during(monkeypatch, task=2)
    with pytest.raises(RuntimeError):
        run_synthetic(*THREE, out=tmp_path / "run")
    monkeypatch.undo()
    assert json.loads((tmp_path / "run" / "results.json").read_text())["completed_tasks"] == 2
    whole = run_synthetic(*THREE, out=tmp_path / "whole")
    resumed = cl.run.run(make_config(*THREE, f"resume={tmp_path / 'run'}"), str(tmp_path / "x"))
    assert resumed.resumed_after == [1] and resumed.accuracy_matrix == whole.accuracy_matrix


def test_resume_refuses_a_different_config(run_synthetic, tmp_path, monkeypatch):
    stop_during(monkeypatch, task=1)
    with pytest.raises(RuntimeError):
        run_synthetic(*THREE, out=tmp_path / "run")
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"different config.*stream\.max_length: 32 -> 20"):
        cl.run.build(make_config(*THREE, "stream.max_length=20", f"resume={tmp_path / 'run'}"))
    # What shapes only the remaining tasks may change (a lower rate after a NaN loss); it is recorded.
    exp = cl.run.build(make_config(*THREE, "optimizer.lr=1e-3", f"resume={tmp_path / 'run'}"))
    assert exp.results.resume_changes == [["optimizer.lr: 0.003 -> 0.001"]]
    with pytest.raises(FileNotFoundError, match="no results.json"):
        cl.run.build(make_config(*THREE, f"resume={tmp_path / 'nothing'}"))


def test_settings_added_since_a_run_was_saved_count_as_what_that_run_computed():
    from cl.engine.checkpoint import differences

    saved = {"optimizer": {"lr": 1e-4}, "stream": {"name": "lm"}, "strategy": {"naive": {}}}
    now = {"optimizer": {"lr": 1e-4, "fused": False}, "selection": {"monitor": False, "min_delta": 0.0},
           "stream": {"name": "lm", "rehearsal": {"speeches": {"train_examples": 1024}}},
           "strategy": {"naive": {"_search_": {"optimizer.lr": [5e-5, 1e-4]}}}}  # fmt: skip
    assert differences(saved, now) == []
    fused = {**now, "optimizer": {"lr": 1e-4, "fused": True}}
    assert differences(saved, fused) == ["optimizer.fused: False -> True"]
    # a run saved with a rehearsal section is compared on it
    had = {**saved, "stream": {"name": "lm", "rehearsal": {"speeches": {"train_examples": 512}}}}
    assert differences(had, now) == ["stream.rehearsal.speeches.train_examples: 512 -> 1024"]
