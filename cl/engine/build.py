"""From a config to an ``Experiment``: every check, model, data and strategy, before any training.

Each step is one function; ``build`` calls them in the order that keeps random initialisation the
same for the same seed (backbone, then data, then the family's heads).
"""

import time

import lightning as L
from omegaconf import DictConfig, OmegaConf

from cl.engine import checkpoint
from cl.engine.callback import ContinualCallback
from cl.engine.checks import check_fits_positions, check_settings
from cl.engine.loop import Experiment, LoopSettings
from cl.engine.module import ContinualModule
from cl.engine.names import order_name, strategy_name
from cl.engine.optim import optimizer_factory
from cl.engine.results import RunResults
from cl.models.load import family, load_backbone
from tasks.config import instantiate as instantiate_plainly
from tasks.stream import Stream, build_stream

OmegaConf.register_new_resolver("cl.strategy_name", strategy_name, replace=True)
OmegaConf.register_new_resolver("cl.order_name", order_name, replace=True)


def build_callbacks(strategies: DictConfig | None) -> list[L.Callback]:
    """One callback per chosen strategy; a strategy with no ``_target_`` is configuration alone. A
    strategy's ``_search_`` and ``_tune_metric_`` (read by ``cl.tune``) are not among its arguments."""
    nodes = [node for node in (strategies or {}).values() if node and node.get("_target_")]
    return [instantiate_plainly({k: v for k, v in node.items() if k not in checkpoint.TUNING_KEYS}) for node in nodes]


def build_loggers(cfg: DictConfig) -> list:
    node = cfg.get("logger")
    logger = instantiate_plainly(node) if node and node.get("_target_") else None
    return [logger] if logger is not None else []


def build_model_and_stream(cfg: DictConfig) -> tuple[ContinualModule, Stream, dict]:
    """The model family named by ``model._target_``: its backbone, the stream batched its way, and its
    module; also the seconds model loading and data preparation took."""
    module_class = family(cfg.model)
    start = time.perf_counter()
    backbone, tokenizer = load_backbone(cfg.model, module_class.auto_model)
    check_fits_positions(cfg, backbone)
    model_seconds = time.perf_counter() - start
    batching = lambda tasks, probes: module_class.batching(tasks, probes, cfg.stream, tokenizer, backbone)  # noqa: E731
    stream = build_stream(cfg.stream, tokenizer, cfg.seed, batching)
    data_seconds = time.perf_counter() - start - model_seconds
    optimizer = optimizer_factory(cfg.optimizer)
    schedule = {"scheduler": cfg.scheduler.name, "warmup_ratio": cfg.scheduler.warmup_ratio}
    module = module_class.from_config(cfg.model, backbone, tokenizer, stream, optimizer, **schedule)
    if prompts := getattr(stream.collate, "prompts", None):  # a prompt and an answer wrap every text
        check_fits_positions(cfg, backbone, max(len(p.prefix) + len(p.suffix) for p in prompts) + module.answer_span)
    return module, stream, {"model": model_seconds, "data": data_seconds}


def new_results(cfg: DictConfig, stream: Stream, module: ContinualModule, setup_seconds: dict) -> RunResults:
    return RunResults(
        stream=stream.name,
        strategy=strategy_name(cfg.strategy),
        seed=cfg.seed,
        scenario=stream.scenario,
        task_names=stream.task_names,
        test_examples=[len(stream.scored_split(t)) for t in stream.tasks],
        evaluated_on=stream.evaluate_on,
        config=OmegaConf.to_container(cfg, resolve=True),
        total_params=sum(p.numel() for p in module.parameters()),
        scores=[t.score for t in stream.tasks],
        general_names=[p.name for p in stream.probes],
        general_kinds=[p.kind if p.kind == "perplexity" else str(p.score) for p in stream.probes],
        setup_seconds=setup_seconds,
    )


def build(cfg: DictConfig) -> Experiment:
    check_settings(cfg)
    L.seed_everything(cfg.seed, workers=True)
    callbacks = build_callbacks(cfg.strategy)  # bad strategy settings fail before any data work
    resumed, state = None, None
    if cfg.get("resume"):
        resumed, state = checkpoint.open_run(cfg.resume, OmegaConf.to_container(cfg, resolve=True))
    module, stream, setup_seconds = build_model_and_stream(cfg)
    module.cl_callbacks = [cb for cb in callbacks if isinstance(cb, ContinualCallback)]
    if state is not None:
        checkpoint.load_strategies(callbacks, state)
    done = state["completed_tasks"] if state else 0
    for cb in module.cl_callbacks:
        cb.on_run_start(module, stream, done)
    if state is not None:
        state["trained"] = checkpoint.load_weights(module, state)
    settings = LoopSettings.from_config(cfg)
    if resumed is None:  # a new run, or one stopped before it wrote results (it starts again in its folder)
        results = new_results(cfg, stream, module, setup_seconds)
        return Experiment(module, stream, callbacks, results, settings, cfg, cfg.get("resume") and str(cfg.resume))
    resumed.resumed_after.append(resumed.completed_tasks)
    resumed.status = "running"
    return Experiment(module, stream, callbacks, resumed, settings, cfg, str(cfg.resume), state)
