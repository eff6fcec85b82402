"""Per-task model selection and early stopping on the current task's validation split."""

import json

import pytest
import torch
from conftest import make_config
from test_resume import stop_during

import cl.run
from cl.engine import selection

VAL = ("stream.validation_fraction=0.25", "selection.monitor=true")
ONE_TASK = ("~stream.tasks.t1", "~stream.tasks.t2")


def test_each_task_keeps_its_best_validation_epoch_and_records_the_curve(run_synthetic, tmp_path):
    res = run_synthetic(*VAL, "trainer.max_epochs=3", out=tmp_path / "run")
    assert len(res.validation) == 3
    for task in res.validation:
        assert len(task["curve"]) == 3 and task["epochs"] == 3  # one validation per epoch, no early stop
        assert task["chosen"] == task["curve"].index(max(task["curve"]))
    assert not list((tmp_path / "run" / selection.FOLDER).glob("*.ckpt"))  # restored, then deleted
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert stored["validation"] == res.validation


def test_a_run_without_selection_does_not_warn_of_a_missing_validation_loader(run_synthetic, recwarn):
    # Lightning warns when a module has a validation_step and no loader: without selection that is intended
    run_synthetic("trainer.max_epochs=1")
    assert not [w for w in recwarn if "validation_step" in str(w.message)]


def test_the_restored_weights_are_the_chosen_epochs(run_synthetic, monkeypatch):
    """Weights at each validation, recorded apart from Lightning: the task ends on the chosen one's."""
    snapshots, ended = [], []
    clone = lambda module: {k: v.detach().clone() for k, v in module.state_dict().items()}  # noqa: E731
    original, restore = selection.ValidationCurve.on_validation_end, selection.restore_best

    def record(self, trainer, module):
        original(self, trainer, module)
        snapshots.append(clone(module))

    def restore_and_record(module, found, trainer):
        out = restore(module, found, trainer)
        ended.append((out, clone(module), list(snapshots)))
        snapshots.clear()
        return out

    monkeypatch.setattr(selection.ValidationCurve, "on_validation_end", record)
    monkeypatch.setattr(selection, "restore_best", restore_and_record)
    run_synthetic(*VAL, "trainer.max_epochs=6")
    assert len(ended) == 3
    for out, weights, snapshots in ended:
        assert len(snapshots) == 6
        assert all(torch.equal(weights[k], snapshots[out["chosen"]][k]) for k in weights)
        for i, snapshot in enumerate(snapshots):  # and no other epoch's
            if i != out["chosen"]:
                assert not all(torch.equal(weights[k], snapshot[k]) for k in weights)
    assert any(out["chosen"] < 5 for out, _, _ in ended)  # some task did not end on its last epoch


def test_early_stopping_ends_a_task_after_its_patience(run_synthetic):
    # No validation can improve by 10: the first sets the best, patience 1 stops at the second.
    res = run_synthetic(*VAL, "selection.patience=1", "selection.min_delta=10", "trainer.max_epochs=5",
                        *ONE_TASK)  # fmt: skip
    assert res.validation[0]["epochs"] == 2 and len(res.validation[0]["curve"]) == 2
    assert res.validation[0]["chosen"] == 0


def test_validation_never_reads_the_test_split(build_synthetic):
    exp = build_synthetic(*VAL)
    loader = exp.stream.validation_loader(1, 8)
    assert len(loader.dataset) == len(exp.stream.tasks[1].validation)
    test = set(map(tuple, exp.stream.tasks[1].test["input_ids"]))
    assert not test & set(map(tuple, loader.dataset["input_ids"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("selection.monitor=true",), "set stream.validation_fraction"),
        (("stream.validation_fraction=0.25", "selection.patience=2"), "set selection.monitor=true"),
        ((*VAL, "selection.patience=0"), "selection.patience must be a positive integer"),
        ((*VAL, "+selection.patiense=2"), "selection.patiense is not a setting"),
    ],
)
def test_bad_selection_settings_fail_before_training(build_synthetic, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_synthetic(*overrides)


def test_a_task_resumed_mid_way_keeps_its_curve_and_best_weights(run_synthetic, tmp_path, monkeypatch):
    """Three steps an epoch, checkpointed at step 4 (after epoch 1's validation), stopped at step 5 of
    task 1: the resumed run chooses among the same epochs with the same scores as the uninterrupted one."""
    args = [*VAL, "trainer.max_epochs=2", "~stream.tasks.t2", "mid_task_checkpoint.every_n_steps=2"]
    whole = run_synthetic(*args, out=tmp_path / "whole")
    stop_during(monkeypatch, task=1, step=5)
    with pytest.raises(RuntimeError, match="simulated stop"):
        run_synthetic(*args, out=tmp_path / "stopped")
    monkeypatch.undo()
    resumed = cl.run.run(make_config(*args, f"resume={tmp_path / 'stopped'}"), str(tmp_path / "x"))
    assert resumed.validation == whole.validation and len(whole.validation[1]["curve"]) == 2
    assert resumed.accuracy_matrix == whole.accuracy_matrix
