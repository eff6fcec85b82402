"""Checkpoints at task boundaries, and resuming a run from one.

After the initial evaluation and after every finished task the loop writes ``checkpoint.pt`` beside
``results.json``. It holds the
weights training can have changed (every parameter that was trainable in some task, adapters and
heads included, and every buffer); weights never trained are the pretrained ones, rebuilt from the
config, so a LoRA run's checkpoint is its adapters and heads, not the base model. It also holds every
strategy's ``state_dict`` (the replay memory), the RNG states, and how many tasks are finished.
Optimizers and schedulers start afresh with every task, so none crosses a boundary; the distillation
teacher is the model at the start of a task, so it is the checkpointed model itself.

Run folders are shared (sweeps, papers), so a checkpoint is loaded with ``weights_only=True``: it
holds only tensors and plain values (numbers, strings, lists, dicts), never pickled objects, and a
file holding anything else is refused rather than run.
"""

import logging
import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch

from cl.engine.results import RunResults, library_versions
from tasks.cache import replace_atomically

log = logging.getLogger(__name__)

FILE = "checkpoint.pt"
# Settings that do not change what a run computes, so a resumed run may change them.
FREE = ("resume", "skip_done", "logger", "checkpoint", "keep_checkpoint", "offline", "strategy_name", "order_name",
        "trainer.enable_progress_bar", "mid_task_checkpoint")  # fmt: skip
# Settings that shape only the tasks still to train: a resumed run may change them (a lower rate
# after a NaN loss, another device), and results.json records the change.
FOR_REMAINING_TASKS = ("optimizer", "scheduler", "batch_size", "eval_batch_size", "trainer.gradient_clip_val",
                       "trainer.precision", "trainer.accelerator", "trainer.devices", "trainer.accumulate_grad_batches",
                       "matmul_precision")  # fmt: skip


def rng_states() -> dict:
    """Every RNG the run draws from, as tensors and plain values (loadable with ``weights_only``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
             "has_gauss": int(has_gauss), "gauss": float(gauss)}  # fmt: skip
    state = {"torch": torch.get_rng_state(), "numpy": numpy, "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def callback_key(i: int, cb) -> str:
    return f"{i}:{type(cb).__name__}"


def save(
    out_dir: str | Path,
    module,
    callbacks: list,
    completed: int,
    trained: set[str],
    rng: dict | None = None,
    file: str = FILE,
) -> None:
    """Write the state after ``completed`` tasks, atomically (a crash mid-write keeps the old one).
    ``rng``: the run's random-number states when they are not the process's (packed runs)."""
    keep = trained | {name for name, _ in module.named_buffers()}
    state = {
        "completed_tasks": completed,
        "module": {k: v for k, v in module.state_dict().items() if k in keep},
        "trained": sorted(trained),
        "callbacks": {callback_key(i, cb): cb.state_dict() for i, cb in enumerate(callbacks)},
        "rng": rng or rng_states(),
    }
    replace_atomically(Path(out_dir) / file, lambda tmp: torch.save(state, tmp))


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def _under(key: str, names: tuple[str, ...]) -> bool:
    return any(key == f or key.startswith(f"{f}.") for f in names)


# Settings added after runs were saved, with the value that computes what those runs computed: a
# run saved without one equals a run that sets it to this value. (Before optimizer.fused, AdamW ran
# PyTorch's per-tensor loop, fused=False; before selection, every run kept its last epoch.)
ADDED = {"model.length_chunks": 1, "optimizer.fused": False, "selection.monitor": False, "selection.min_delta": 0.0}
# Sections added later that only a strategy added with them reads: a run saved without the section
# computed what a run with it computes (stream.rehearsal is read by general_replay alone; its answers
# only widen the span of logits computed, masked out of every loss and score).
ADDED_SECTIONS = ("stream.rehearsal",)


# What a strategy declares for cl.tune (its search space, the metric its tuning maximises), never read by a run.
TUNING_KEYS = ("_search_", "_tune_metric_")


def _search_space(key: str) -> bool:
    return any(k in key.split(".") for k in TUNING_KEYS)


def differences(saved: dict, current: dict, ignore: tuple[str, ...] = FREE) -> list[str]:
    """``key: saved -> current`` for every setting that differs, except those under ``ignore``."""
    a, b = flatten(saved), flatten(current)
    a = {**{k: v for k, v in ADDED.items() if k in b and k not in a}, **a}
    for section in ADDED_SECTIONS:
        if not any(_under(k, (section,)) for k in a):
            a.update({k: v for k, v in b.items() if _under(k, (section,))})
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in sorted(a.keys() | b.keys())
            if not _under(k, ignore) and not _search_space(k) and a.get(k) != b.get(k)]  # fmt: skip


def load(path: Path) -> dict:
    """A checkpoint's contents; refuses, naming the file, one that is damaged or holds objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise ValueError(
            f"{path} holds objects other than tensors and plain values{what}, and loading it could run code: "
            f"refused. Resume only run folders you trust; delete the file to start the run again"
        ) from None
    except (EOFError, RuntimeError, OSError):
        why = "empty" if path.stat().st_size == 0 else "truncated or not a checkpoint"
        raise ValueError(f"{path} is damaged ({why}): delete it and start the run again, or resume a copy") from None


def open_run(folder: str | Path, config: dict) -> tuple[RunResults | None, dict | None]:
    """The results and checkpoint of a run folder to resume, after checking it fits ``config``.
    ``(None, None)`` for a run folder stopped before it wrote any results: it starts again there."""
    folder = Path(folder)
    if not (folder / "results.json").exists():
        if (folder / ".hydra").is_dir() and not (folder / FILE).exists():
            log.warning("resume=%s: the run stopped before its first results; starting it again there", folder)
            return None, None
        raise FileNotFoundError(f"resume={folder}: no results.json there; give the folder of an earlier run")
    results = RunResults.load(folder)
    diff = differences(results.config, config, FREE + FOR_REMAINING_TASKS)
    if diff:
        raise ValueError(
            f"resume={folder} was run with a different config; resume with the same settings (only "
            f"{', '.join(FOR_REMAINING_TASKS)} may change) or start a new run. "
            f"Differences (saved -> now): {'; '.join(diff[:10])}"
        )
    changes = differences(results.config, config)
    if changes:
        log.warning("resuming with changed settings for the remaining tasks: %s", "; ".join(changes))
        results.resume_changes.append(changes)
    now = library_versions()
    changed = [f"{k} {v} -> {now.get(k)}" for k, v in results.versions.items() if k != "platform" and now.get(k) != v]
    if changed:
        log.warning("resuming with other library versions (%s): the result may differ from an uninterrupted run",
                    ", ".join(changed))  # fmt: skip
    if results.status == "finished":
        raise ValueError(f"resume={folder}: that run already finished all its tasks")
    ckpt = folder / FILE
    if not ckpt.exists():
        if results.completed_tasks:
            raise FileNotFoundError(f"resume={folder}: no {FILE} (was it run with checkpoint=false?)")
        # Stopped during the first task without a checkpoint: evaluating again draws the same random
        # numbers the initial evaluation drew, so task 0 trains from the state it had.
        results.truncate(0)
        results.initial_accuracy, results.samples = [], []
        return results, None
    state = load(ckpt)
    results.truncate(state["completed_tasks"])  # rows written after the last checkpoint are redone
    return results, state


def load_strategies(callbacks: list, state: dict) -> None:
    """Put the checkpointed strategy states back into freshly built strategies."""
    keys = [callback_key(i, cb) for i, cb in enumerate(callbacks)]
    if keys != list(state["callbacks"]):
        raise ValueError(f"the checkpoint's strategies {list(state['callbacks'])} are not this run's {keys}")
    for key, cb in zip(keys, callbacks):
        cb.load_state_dict(state["callbacks"][key])


def load_weights(module, state: dict) -> set[str]:
    """Put the checkpointed weights into the module (after the strategies rebuilt what they add to
    it); returns the names of parameters trained so far. The RNG states are set by the loop, just
    before training resumes."""
    _, unexpected = module.load_state_dict(state["module"], strict=False)  # missing: never trained
    if unexpected:
        raise ValueError(f"checkpoint weights not in the model: {unexpected[:5]}")
    module.task_id = max(0, state["completed_tasks"] - 1)
    return set(state["trained"])
