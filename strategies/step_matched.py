"""Step-matched naive, a control for replay: the same steps and batch shape, no earlier task's data.

Replay trains on ``ratio`` x batch size extra examples at every step, so part of what it gains may be
more training, not old data. This adds as many examples to each batch, drawn (seeded) from the data
the current task trains on, so naive fine-tuning takes replay's steps with replay's examples per step;
only where the extra examples come from differs.
"""

import torch
from typing_extensions import override

from cl.engine.callback import ContinualCallback


class StepMatched(ContinualCallback):
    """Args:
    ratio: extra examples per current example in a batch, as ``replay.ratio``.
    seed: for which examples are drawn.
    """

    def __init__(self, ratio: float = 0.5, seed: int = 0):
        if ratio < 0:
            raise ValueError(f"step_matched.ratio must be >= 0, got {ratio}")
        self.ratio, self.generator = ratio, torch.Generator().manual_seed(seed)
        self.data, self.stream = None, None

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        self.data, self.stream = data, stream

    @override
    def extend_batch(self, module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        k = round(self.ratio * len(batch["labels"]))
        if k == 0:
            return batch
        # As replay: every process draws for all and keeps its share, so the generators stay in step.
        world, rank = (module.trainer.world_size, module.trainer.global_rank) if module._trainer else (1, 0)
        picks = torch.randint(len(self.data), (k * world,), generator=self.generator)[rank * k : (rank + 1) * k]
        extra = self.stream.collate([self.data[i] for i in picks.tolist()])  # with their rows, for distill
        return self.stream.merge(batch, {key: v.to(batch["input_ids"].device) for key, v in extra.items()})

    @override
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    @override
    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
