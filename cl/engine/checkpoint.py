"""Checkpoints at task boundaries, and resuming a run from one.

After every finished task the loop writes ``checkpoint.pt`` beside ``results.json``. It holds the
weights training can have changed (every parameter that was trainable in some task, adapters and
heads included, and every buffer); weights never trained are the pretrained ones, rebuilt from the
config, so a LoRA run's checkpoint is its adapters and heads, not the base model. It also holds every
strategy's ``state_dict`` (the replay memory), the RNG states, and how many tasks are finished.
Optimizers and schedulers start afresh with every task, so none crosses a boundary; the distillation
teacher is the model at the start of a task, so it is the checkpointed model itself.
"""

import logging
import random
from pathlib import Path

import numpy as np
import torch

from cl.engine.results import RunResults, library_versions
from tasks.cache import replace_atomically

log = logging.getLogger(__name__)

FILE = "checkpoint.pt"
# Settings that do not change what a run computes, so a resumed run may change them.
FREE = ("resume", "skip_done", "logger", "checkpoint", "keep_checkpoint", "offline", "strategy_name", "order_name",
        "trainer.enable_progress_bar")  # fmt: skip


def rng_states() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def callback_key(i: int, cb) -> str:
    return f"{i}:{type(cb).__name__}"


def save(out_dir: str | Path, module, callbacks: list, completed: int, trained: set[str]) -> None:
    """Write the state after ``completed`` tasks, atomically (a crash mid-write keeps the old one)."""
    keep = trained | {name for name, _ in module.named_buffers()}
    state = {
        "completed_tasks": completed,
        "module": {k: v for k, v in module.state_dict().items() if k in keep},
        "trained": sorted(trained),
        "callbacks": {callback_key(i, cb): cb.state_dict() for i, cb in enumerate(callbacks)},
        "rng": rng_states(),
    }
    replace_atomically(Path(out_dir) / FILE, lambda tmp: torch.save(state, tmp))


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(saved: dict, current: dict) -> list[str]:
    """``key: saved -> current`` for every setting that differs, ignoring the ``FREE`` ones."""
    a, b = flatten(saved), flatten(current)
    free = lambda k: any(k == f or k.startswith(f"{f}.") for f in FREE)  # noqa: E731
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}" for k in sorted(a.keys() | b.keys())
            if not free(k) and a.get(k) != b.get(k)]  # fmt: skip


def open_run(folder: str | Path, config: dict) -> tuple[RunResults, dict | None]:
    """The results and checkpoint of a run folder to resume, after checking it fits ``config``."""
    folder = Path(folder)
    if not (folder / "results.json").exists():
        raise FileNotFoundError(f"resume={folder}: no results.json there; give the folder of an earlier run")
    results = RunResults.load(folder)
    diff = differences(results.config, config)
    if diff:
        raise ValueError(
            f"resume={folder} was run with a different config; resume with the same settings or start a new run. "
            f"Differences (saved -> now): {'; '.join(diff[:10])}"
        )
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
        return results, None  # stopped during the first task: start it again
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
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
    module.task_id = state["completed_tasks"] - 1
    return set(state["trained"])
