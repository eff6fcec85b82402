"""Bad input fails before training, with a message naming the problem and the fix (data problems:
test_stream.py; LoRA target modules: strategies/test_lora.py)."""

import json

import pytest
import torch
from conftest import make_config
from hydra.errors import MissingConfigException

import cl.run
from cl.engine.callback import ContinualCallback


@pytest.mark.parametrize(
    "override, choices",
    [("strategy=nope", "distill"), ("model=nope", "minilm"), ("stream=nope", "text4")],
)
def test_unknown_names_list_the_choices(override, choices):
    with pytest.raises(MissingConfigException, match=f"(?s)nope.*Available options.*{choices}"):
        make_config(override)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer.lr=-1"], r"settings [^$]*'fused': (True|False)[^$]* are invalid: Invalid learning rate: -1"),
        (["optimizer.lr=abc"], r"optimizer settings .* are invalid"),
        (["batch_size=0"], r"batch_size must be a positive integer, got 0"),
        (["trainer.max_epochs=two"], r"trainer.max_epochs must be a positive integer, got 'two'"),
        (["scheduler.warmup_ratio=2"], r"warmup_ratio must be a number in \[0, 1\], got 2"),
        (["strategy=distill", "strategy.distill.alpha=1.5"], r"distill.alpha must be in \[0, 1\], got 1.5"),
        (["strategy=distill", "strategy.distill.temperature=0"], r"distill.temperature must be > 0, got 0"),
        (["strategy=distill", "strategy.distill.alpha=high"], r"strategy.distill.alpha must be float, got 'high'"),
        (["strategy=replay", "strategy.replay.memory_size=-5"], r"memory_size .* must be >= 0, got -5"),
        (["strategy=replay", "+strategy.replay.memory=5"], r"replay.memory is not a setting of replay; .*'memory_size"),
        (["strategy=low_lr", "strategy.low_lr.lr=-1e-5"], r"low_lr.lr .* must be > 0"),
        (["strategy=mc_dropout", "strategy.mc_dropout.p=1.5"], r"mc_dropout.p must be in \[0, 1\)"),
    ],
)
def test_bad_settings_are_named_before_training(overrides, message):
    with pytest.raises(ValueError, match=message):
        cl.run.build(make_config(*overrides))


def test_a_missing_model_path_is_named():
    cfg = make_config("model=minilm", "model.path=./no/such/model")
    with pytest.raises(FileNotFoundError, match="model.path './no/such/model' does not exist"):
        cl.run.build(cfg)


class NaNLoss(ContinualCallback):
    def loss_terms(self, module, batch, outputs, terms):
        return {**terms, "bad": torch.tensor(float("nan"))} if module.task_id == 1 else terms


def test_a_nan_loss_stops_the_run_naming_task_and_step(run_synthetic, tmp_path, monkeypatch):
    monkeypatch.setattr("cl.engine.build.build_callbacks", lambda strategies: [NaNLoss()])
    with pytest.raises(FloatingPointError, match=r"loss is nan \(ce .*, bad nan\) in task 1, epoch 0, step 0"):
        run_synthetic("trainer.max_epochs=1", out=tmp_path / "run")
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["status"] == "failed" and res["completed_tasks"] == 1 and res["metrics"]["acc"] is not None
