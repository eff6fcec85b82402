"""Checks of the run's settings that must fail before any model or data work, with a message that
names the setting, the value and what would be accepted."""

import inspect
import types
import typing

import lightning as L
import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from transformers import SchedulerType

from cl.engine.optim import optimizer_factory


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
        optimizer_factory(cfg.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    except Exception as err:
        cause = err.__cause__ or err
        # resolved: the user reads the values the optimizer got, not ${...} interpolations
        settings = OmegaConf.to_container(cfg.optimizer, resolve=True)
        raise ValueError(f"optimizer settings {settings} are invalid: {cause}") from None


def check_scheduler(cfg: DictConfig) -> None:
    names = [t.value for t in SchedulerType]
    if cfg.scheduler.name not in names:
        raise ValueError(f"scheduler.name={cfg.scheduler.name!r} is not a transformers scheduler; use one of {names}")


def check_trainer(cfg: DictConfig) -> None:
    """Build a Trainer from ``trainer.*`` now: Lightning's own checks (precision, accelerator, devices)
    run before any model or data work instead of after them."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    try:
        L.Trainer(**{**kwargs, "logger": False, "enable_progress_bar": False})
    except Exception as err:
        raise ValueError(f"trainer settings are invalid: {str(err).strip()}") from None


def check_max_length(cfg: DictConfig) -> None:
    positive_int("stream.max_length", cfg.stream.get("max_length"))


def check_fits_positions(cfg: DictConfig, backbone, extra_tokens: int = 0) -> None:
    """``stream.max_length`` (plus a prompt's ``extra_tokens``) within the model's position embeddings."""
    limit = getattr(backbone.config, "max_position_embeddings", None)
    if limit is not None and cfg.stream.max_length + extra_tokens > limit:
        around = f" plus {extra_tokens} prompt and answer tokens" if extra_tokens else ""
        raise ValueError(
            f"stream.max_length={cfg.stream.max_length}{around} exceeds the {limit} positions of model "
            f"{cfg.model.name}; set stream.max_length to at most {limit - extra_tokens}"
        )


def check_selection(cfg: DictConfig) -> None:
    chosen = cfg.get("selection") or {}
    known = {"monitor", "patience", "min_delta", "val_check_interval"}
    if unknown := set(chosen) - known:
        raise ValueError(f"selection.{sorted(unknown)[0]} is not a setting; selection's settings are {sorted(known)}")
    if chosen.get("patience") is not None:
        positive_int("selection.patience", chosen.patience)
    if chosen.get("monitor") and not cfg.stream.get("validation_fraction"):
        raise ValueError(
            "selection.monitor=true chooses among each task's epochs on its validation split, and the stream "
            "has none: set stream.validation_fraction (e.g. 0.2, held out of each task's training data)"
        )
    if chosen.get("patience") is not None and not chosen.get("monitor"):
        raise ValueError("selection.patience stops a task on its validation score: set selection.monitor=true too")


def check_settings(cfg: DictConfig) -> None:
    """Everything that can be checked from the config alone, in the order a user reads it."""
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {cfg.seed!r}")
    positive_int("batch_size", cfg.batch_size)
    positive_int("eval_batch_size", cfg.eval_batch_size)
    if not (cfg.trainer.max_epochs == -1 and (cfg.trainer.get("max_steps") or -1) > 0):  # -1: max_steps decides
        positive_int("trainer.max_epochs", cfg.trainer.max_epochs)
    check_max_length(cfg)
    mid = cfg.get("mid_task_checkpoint") or {}
    if mid.get("every_n_steps") is not None:
        positive_int("mid_task_checkpoint.every_n_steps", mid.every_n_steps)
    minutes = mid.get("every_minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0):
        raise ValueError(f"mid_task_checkpoint.every_minutes must be a positive number, got {minutes!r}")
    if mid.get("every_n_steps") and minutes:
        raise ValueError("set one of mid_task_checkpoint.every_n_steps and every_minutes, not both (Lightning's rule)")
    check_selection(cfg)
    ratio = cfg.scheduler.warmup_ratio
    if not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise ValueError(f"scheduler.warmup_ratio must be a number in [0, 1], got {ratio!r}")
    check_scheduler(cfg)
    check_optimizer(cfg)
    check_trainer(cfg)
    for name, node in (cfg.strategy or {}).items():
        if node and node.get("_target_"):
            check_strategy_args(name, node)
