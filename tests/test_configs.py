"""Every YAML in configs/ composes, and what it names can be instantiated."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from cl.engine.build import build_callbacks, build_loggers, strategy_name
from cl.engine.loggers import close
from cl.engine.module import ContinualModule
from cl.models.load import family
from tests.conftest import make_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("name", options("strategy"))
def test_strategy_configs_instantiate(name):
    cfg = make_config(f"strategy={name}")
    assert list(cfg.strategy) == [name]
    for cb in build_callbacks(cfg.strategy):
        assert cb is not None


@pytest.mark.parametrize("name", options("stream"))
def test_stream_configs_compose(name):
    cfg = make_config(f"stream={name}")
    assert cfg.stream.name and len(cfg.stream.tasks) >= 1
    assert cfg.stream.scenario in ("task", "class")
    for task in cfg.stream.tasks.values():
        assert "_target_" in task.source


@pytest.mark.parametrize("name", options("model"))
def test_model_configs_compose(name):
    cfg = make_config(f"model={name}")
    module_class = family(cfg.model)  # the family its _target_ names
    assert issubclass(module_class, ContinualModule)
    if not module_class.causal_lm:
        assert {"pooling", "head_dropout"} <= set(cfg.model)
    if cfg.model.get("config"):
        assert instantiate(cfg.model.config).hidden_size > 0


@pytest.mark.parametrize("name", options("experiment"))
def test_experiment_presets_compose(name):
    cfg = make_config(f"experiment={name}")
    assert cfg.stream.name and cfg.model.name and family(cfg.model)


@pytest.mark.parametrize("name", options("logger"))
def test_logger_configs_instantiate(name, tmp_path):
    if name == "tensorboard":
        pytest.importorskip("tensorboard")
    cfg = make_config(f"logger={name}", *([f"logger.save_dir={tmp_path}"] if name != "none" else []))
    loggers = build_loggers(cfg)
    assert len(loggers) == (0 if name == "none" else 1)
    close(loggers, ok=True)


def test_trainer_config_builds_a_trainer():
    import lightning as L

    cfg = make_config()
    assert L.Trainer(**cfg.trainer, logger=False).max_epochs == cfg.trainer.max_epochs


def test_strategy_name_joins_combined_strategies():
    assert strategy_name(None) == "naive"
    assert strategy_name({"naive": {}}) == "naive"
    assert strategy_name({"naive": {}, "replay": {}, "distill": {}}) == "replay+distill"


def test_the_optimizer_is_fused_except_where_lightning_cannot_clip_it():
    import torch

    from cl.engine.checks import check_optimizer
    from cl.engine.optim import optimizer_factory

    params = [torch.nn.Parameter(torch.ones(3))]
    assert optimizer_factory(make_config().optimizer)(params).defaults["fused"] is True
    # bf16 autocast: Lightning refuses to clip the gradients of an optimizer that unscales them itself
    assert optimizer_factory(make_config("trainer.precision=bf16-mixed").optimizer)(params).defaults["fused"] is False
    other = optimizer_factory(make_config("optimizer._target_=torch.optim.RMSprop").optimizer)(params)
    assert isinstance(other, torch.optim.RMSprop)  # it has no fused kernel: the setting is left out
    check_optimizer(make_config("optimizer._target_=torch.optim.RMSprop"))  # the check before training agrees
