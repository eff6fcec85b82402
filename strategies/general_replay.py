"""General-data replay for language models: every training batch also carries examples of a general
corpus that the stream never tests (``stream.rehearsal``; the embedded LM stream rehearses 2012
convention speeches, continued from their first words), at a fixed ratio, as LLM fine-tuners mix
general instruction or pre-training data into task data to keep what the model could do before
(e.g. Scialom et al. 2022's rehearsal; InstructGPT's pre-training mix). What it keeps is read off
the stream's general-ability probes, which are other data (``stream.general``)."""

import torch
from typing_extensions import override

from cl.engine.callback import ContinualCallback


class GeneralReplay(ContinualCallback):
    """Args:
    ratio: general examples per current example in a batch (0.25: 16 current + 4 general).
    seed: which general examples are drawn.
    """

    def __init__(self, ratio: float = 0.25, seed: int = 0):
        if not ratio > 0:
            raise ValueError(f"general_replay.ratio must be > 0, got {ratio}")
        self.ratio, self.generator, self.drawn = ratio, torch.Generator().manual_seed(seed), 0
        self.pool, self.stream = [], None

    @override
    def on_run_start(self, module, stream, completed_tasks) -> None:
        if not module.causal_lm:
            raise ValueError("general_replay rehearses general text, which needs a causal language model "
                             "(model=smollm2, hub_lm or tiny_llama), not the encoder classifier")  # fmt: skip
        if not stream.rehearsal:
            raise ValueError(f"general_replay needs general data to rehearse: stream {stream.name!r} has no "
                             "stream.rehearsal section (see configs/stream/text4_lm.yaml)")  # fmt: skip
        self.stream = stream
        # Rows as (set, index) pairs: examples are read from the prepared Arrow data when drawn.
        self.pool = [(s, i) for s, task in enumerate(stream.rehearsal) for i in range(len(task.train))]

    @override
    def extend_batch(self, module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        k = max(1, round(self.ratio * len(batch["labels"])))
        # Every process draws for all and keeps its own share (as replay does): generators in step.
        world, rank = (module.trainer.world_size, module.trainer.global_rank) if module._trainer else (1, 0)
        picks = torch.randint(len(self.pool), (k * world,), generator=self.generator)[rank * k : (rank + 1) * k]
        rows = [self.stream.rehearsal[s].train[i] for s, i in (self.pool[j] for j in picks.tolist())]
        self.drawn += len(rows)
        extra = self.stream.collate(rows)
        device = batch["input_ids"].device
        return self.stream.merge(batch, {key: v.to(device) for key, v in extra.items()})

    @override
    def report(self) -> dict[str, float]:
        return {"general_examples_trained": self.drawn}

    @override
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "drawn": self.drawn}

    @override
    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.drawn = state["drawn"]
