"""Small learning rate with layer-wise learning-rate decay (LLRD).

The rate of a parameter is ``lr * layer_decay ** (depth from the top) * task_decay ** task_id``:
the heads get ``lr``, the top transformer block ``lr * layer_decay``, ..., the embeddings the
smallest rate. Lower layers hold general features that later tasks rely on, so they move least
(Howard & Ruder 2018, ULMFiT; Clark et al. 2020, ELECTRA). Warmup and decay within each task come
from the run's ``scheduler`` settings.
"""

from typing_extensions import override

from cl.callback import ContinualCallback
from cl.layers import depth, num_layers


class LowLR(ContinualCallback):
    """Args:
    lr: the top (head) learning rate.
    layer_decay: factor per block going down; 1.0 disables LLRD.
    task_decay: factor applied once more for every task already trained.
    """

    def __init__(self, lr: float = 1e-5, layer_decay: float = 0.8, task_decay: float = 1.0):
        if not lr > 0:
            raise ValueError(f"low_lr.lr must be > 0, got {lr}")
        if not 0 < layer_decay <= 1 or not 0 < task_decay <= 1:
            raise ValueError(f"low_lr decays must be in (0, 1], got {layer_decay=} {task_decay=}")
        self.lr, self.layer_decay, self.task_decay = lr, layer_decay, task_decay
        self.rates: dict[str, float] = {}

    @override
    def param_groups(self, module, groups: list[dict]) -> list[dict]:
        trainable = {id(p) for g in groups for p in g["params"]}
        total = num_layers(module.network.encoder)
        top = total + 1
        base = self.lr * self.task_decay**module.task_id
        by_depth: dict[int, list] = {}
        self.rates = {}
        for name, p in module.network.named_parameters():
            if id(p) in trainable:
                d = depth(name.removeprefix("encoder."), total) if name.startswith("encoder.") else top
                by_depth.setdefault(d, []).append(p)
                self.rates[name] = base * self.layer_decay ** (top - d)
        return [{"params": ps, "lr": base * self.layer_decay ** (top - d)} for d, ps in sorted(by_depth.items())]

    @override
    def report(self) -> dict[str, float]:
        return {"lr_top": max(self.rates.values(), default=0.0), "lr_bottom": min(self.rates.values(), default=0.0)}
