"""Experience replay: a fixed-size memory of earlier tasks' examples, mixed into every training batch
(Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning"; Mammoth's ``er``).

The memory stores token ids (int32), labels and task ids, never copies of datasets. It is filled at
the end of each task, by reservoir sampling over every example seen so far, or class-balanced (an
equal share for every (task, class) seen). Replayed examples train through their own task's head.
"""

import zlib

import numpy as np
import torch
import torch.distributed as dist
from typing_extensions import override

from cl.engine.callback import ContinualCallback, ExampleMemory
from tasks.batching import SLOTS

TOKENS = ("input_ids", "target_ids")  # a row's token columns: the text, and a generative row's response


class Replay(ContinualCallback, ExampleMemory):
    """Args:
    memory_size: examples kept in memory.
    ratio: replayed examples per current example in a batch (0.5: 16 current + 8 replayed).
    selection: ``reservoir`` or ``balanced``.
    seed: for which examples are kept and which are replayed.
    """

    def __init__(self, memory_size: int = 200, ratio: float = 0.5, selection: str = "reservoir", seed: int = 0):
        if memory_size < 0 or ratio < 0:
            raise ValueError(f"replay.memory_size and replay.ratio must be >= 0, got {memory_size}, {ratio}")
        if selection not in ("reservoir", "balanced"):
            raise ValueError(f"replay.selection must be 'reservoir' or 'balanced', got {selection!r}")
        self.memory_size, self.ratio, self.selection = memory_size, ratio, selection
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.buffer: list[dict] = []
        self.seen = 0
        self.stream = None

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        self.stream = stream

    @override
    def on_task_end(self, module, task_id, stream, data) -> None:
        own = data.filter(lambda t: t == task_id, input_columns="task_id")  # not what joint added
        tokens = [c for c in TOKENS if c in own.column_names]  # a generative task's response too
        examples = [
            {**{c: np.asarray(r[c], dtype=np.int32) for c in tokens}, "label": r["label"], "task_id": task_id}
            for r in own.select_columns([*tokens, "label"])
        ]
        if self.selection == "reservoir":
            self._reservoir(examples)
        else:
            self._balanced(examples)
        self._check_same_on_every_rank()

    def digest(self) -> int:
        tokens = lambda ex: b"".join(ex[c].tobytes() + b"|" for c in TOKENS if c in ex)  # noqa: E731
        parts = (tokens(ex) + f"{ex['label']},{ex['task_id']};".encode() for ex in self.buffer)
        return zlib.crc32(b"".join(parts))

    def _check_same_on_every_rank(self) -> None:
        """Every process fills the memory from the whole task with the same seed, so the memories must
        agree; a difference would mean the processes trained on different data."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        digests = [None] * dist.get_world_size()
        dist.all_gather_object(digests, self.digest())
        if len(set(digests)) > 1:
            raise RuntimeError(f"replay memories differ between processes (digests {digests})")

    def _reservoir(self, examples: list[dict]) -> None:
        for i in self.rng.permutation(len(examples)):
            self.seen += 1
            if len(self.buffer) < self.memory_size:
                self.buffer.append(examples[i])
            elif (j := self.rng.integers(self.seen)) < self.memory_size:
                self.buffer[j] = examples[i]

    def _balanced(self, examples: list[dict]) -> None:
        groups: dict[tuple, list] = {}
        for ex in [*self.buffer, *(examples[i] for i in self.rng.permutation(len(examples)))]:
            groups.setdefault((ex["task_id"], ex["label"]), []).append(ex)
        quota, extra = divmod(self.memory_size, max(1, len(groups)))
        keys = sorted(groups)  # the first `extra` groups get one slot more, so no slot stays empty
        self.buffer = [ex for i, key in enumerate(keys) for ex in groups[key][: quota + (i < extra)]]
        self.seen += len(examples)

    @override
    def extend_batch(self, module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        k = round(self.ratio * len(batch["labels"]))
        if not self.buffer or k == 0:
            return batch
        # Every process draws the same slots for all processes and keeps its own share, so the
        # generators stay in step and no two processes replay the same examples.
        world, rank = (module.trainer.world_size, module.trainer.global_rank) if module._trainer else (1, 0)
        slots = torch.randint(len(self.buffer), (k * world,), generator=self.generator)[rank * k : (rank + 1) * k]
        replayed = self.stream.collate([self.buffer[i] for i in slots.tolist()])
        replayed[SLOTS] = slots
        device = batch["input_ids"].device
        return self.stream.merge(batch, {k: v.to(device) for k, v in replayed.items()})

    @override
    def memory_examples(self) -> list[dict]:
        return self.buffer

    @override
    def report(self) -> dict[str, float]:
        return {
            "memory_examples": len(self.buffer),
            "memory_bytes": sum(sum(ex[c].nbytes for c in TOKENS if c in ex) + 16 for ex in self.buffer),
            "memory_tasks": len({ex["task_id"] for ex in self.buffer}),
        }

    @override
    def state_dict(self) -> dict:
        # Tensors and plain values only: checkpoints are loaded with weights_only=True.
        buffer = [{**ex, **{c: torch.from_numpy(ex[c]) for c in TOKENS if c in ex}} for ex in self.buffer]
        return {"buffer": buffer, "seen": self.seen, "rng": self.rng.bit_generator.state,
                "generator": self.generator.get_state()}  # fmt: skip

    @override
    def load_state_dict(self, state: dict) -> None:
        self.buffer = [{**ex, **{c: ex[c].numpy() for c in TOKENS if c in ex}} for ex in state["buffer"]]
        self.seen = state["seen"]
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
