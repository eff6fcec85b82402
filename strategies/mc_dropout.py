"""Monte Carlo dropout: dropout stays active at evaluation and ``passes`` stochastic forward passes
are averaged into the predictive mean (Gal & Ghahramani 2016). A higher training dropout also acts
as an implicit gate that reduces interference between tasks (Mirzadeh et al. 2020).

Also reports the mean predictive entropy on each task, a measure of the model's uncertainty.
"""

from collections import defaultdict

import torch
from torch import nn
from typing_extensions import override

from cl.engine.callback import ContinualCallback


def dropout_modules(network: nn.Module) -> list[nn.Module]:
    """``nn.Dropout`` layers, and attention modules that apply dropout themselves while in training
    mode (Llama and other decoders: ``attention_dropout``, with no ``nn.Dropout`` layer at all)."""
    return [m for m in network.modules() if isinstance(m, nn.Dropout) or hasattr(m, "attention_dropout")]


class MCDropout(ContinualCallback):
    """Args:
    passes: stochastic forward passes averaged at evaluation.
    p: dropout rate set on every dropout layer, for training and evaluation (None: keep the model's).
    """

    def __init__(self, passes: int = 5, p: float | None = 0.1):
        if passes < 1:
            raise ValueError(f"mc_dropout.passes must be >= 1, got {passes}")
        if p is not None and not 0 <= p < 1:
            raise ValueError(f"mc_dropout.p must be in [0, 1), got {p}")
        self.passes, self.p = passes, p
        self.entropy: dict[int, list[float]] = defaultdict(list)
        self.task_names: list[str] = []

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        self.task_names = stream.task_names
        if self.p is not None:
            for m in dropout_modules(module.network):
                if isinstance(m, nn.Dropout):
                    m.p = self.p
                else:
                    m.attention_dropout = self.p

    @override
    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.entropy.clear()

    @override
    def predict_proba(self, module, batch: dict, head: int) -> torch.Tensor:
        dropouts = dropout_modules(module.network)
        for m in dropouts:
            m.train()
        try:
            probs = torch.stack([module.class_probs(batch, head) for _ in range(self.passes)]).mean(0)
        finally:
            for m in dropouts:
                m.eval()
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        self.entropy[int(batch["task_ids"][0])].extend(entropy.tolist())
        return probs

    @override
    def report(self) -> dict[str, float]:
        return {f"entropy/{self.task_names[t]}": sum(v) / len(v) for t, v in sorted(self.entropy.items()) if v}
