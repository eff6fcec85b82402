"""Checks of the run's settings that must fail before any model or data work, with a message that
names the setting, the value and what would be accepted."""

import inspect
import types
import typing

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf


def positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _accepts(annotation, value) -> bool:
    """Whether ``value`` fits a simple annotation (float, int, bool, str, list, optional or union)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    if annotation is list or origin is list:
        return isinstance(value, list | tuple)
    return True  # anything richer is left to the class itself


def check_strategy_args(name: str, node: DictConfig) -> None:
    """Unknown arguments and values of the wrong type, by the strategy's own signature."""
    cls = get_class(node._target_)
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    values = OmegaConf.to_container(node, resolve=True)
    for key, value in values.items():
        if key.startswith("_"):
            continue
        if key not in params:
            known = [p for p in params if p != "self"]
            raise ValueError(f"strategy.{name}.{key} is not a setting of {name}; its settings are {known}")
        if key in hints and not _accepts(hints[key], value):
            kind = getattr(hints[key], "__name__", None) or str(hints[key]).replace("typing.", "")
            raise ValueError(f"strategy.{name}.{key} must be {kind}, got {value!r}")


def check_optimizer(cfg: DictConfig) -> None:
    """Build the optimizer on a dummy parameter: torch's own checks (negative lr, betas) run now."""
    try:
        instantiate(cfg.optimizer, params=[torch.nn.Parameter(torch.zeros(1))])
    except Exception as err:
        cause = err.__cause__ or err
        raise ValueError(f"optimizer settings {OmegaConf.to_container(cfg.optimizer)} are invalid: {cause}") from None


def check_settings(cfg: DictConfig) -> None:
    positive_int("batch_size", cfg.batch_size)
    positive_int("eval_batch_size", cfg.eval_batch_size)
    if not (cfg.trainer.max_epochs == -1 and (cfg.trainer.get("max_steps") or -1) > 0):  # -1: max_steps decides
        positive_int("trainer.max_epochs", cfg.trainer.max_epochs)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {cfg.seed!r}")
    ratio = cfg.scheduler.warmup_ratio
    if not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise ValueError(f"scheduler.warmup_ratio must be a number in [0, 1], got {ratio!r}")
    check_optimizer(cfg)
    for name, node in (cfg.strategy or {}).items():
        if node and node.get("_target_"):
            check_strategy_args(name, node)
