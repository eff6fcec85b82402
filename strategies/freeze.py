"""Parameter freezing: keep the embeddings and the bottom ``k`` transformer layers (or everything but
the task heads, or parameters matching name patterns) fixed for the whole stream.

Freezing the lower layers preserves the general features they hold; only the layers above adapt.
The optimizer only receives trainable parameters, so frozen weights stay bit-identical.
"""

import re

from typing_extensions import override

from cl.engine.callback import ContinualCallback
from cl.models.layers import depth, num_layers


class Freeze(ContinualCallback):
    """Args:
    layers: freeze the embeddings and the bottom ``layers`` transformer blocks (0: embeddings only);
        None: ``share`` of the model's blocks, so one default fits every model.
    share: the share of blocks frozen when ``layers`` is None (0.5 of MiniLM's 6 is 3).
    heads_only: freeze the whole backbone, train only the task heads (a linear probe).
    patterns: regular expressions; parameters whose name matches any are frozen too.
    """

    def __init__(
        self, layers: int | None = None, share: float = 0.5, heads_only: bool = False, patterns: list[str] | None = None
    ):
        if layers is not None and layers < 0:
            raise ValueError(f"freeze.layers must be >= 0 or null, got {layers}")
        if not 0 <= share <= 1:
            raise ValueError(f"freeze.share must be in [0, 1], got {share}")
        self.layers, self.share, self.heads_only = layers, share, heads_only
        self.patterns = [re.compile(p) for p in patterns or []]
        self.frozen: list[str] = []

    def depth_frozen(self, total_layers: int) -> int:
        return self.layers if self.layers is not None else round(self.share * total_layers)

    def should_freeze(self, name: str, total_layers: int) -> bool:
        if name.startswith("heads."):
            return False
        if self.heads_only or any(p.search(name) for p in self.patterns):
            return True
        return name.startswith("backbone.") and depth(name, total_layers) <= self.depth_frozen(total_layers)

    @override
    def on_run_start(self, module, stream, completed_tasks) -> None:
        total = num_layers(module.network.backbone)
        if self.layers is not None and self.layers > total and not self.heads_only:
            raise ValueError(f"freeze.layers={self.layers} but the model has {total} layers; lower it, or set "
                             f"freeze.layers=null to freeze a share of them (freeze.share)")  # fmt: skip
        if not any(self.should_freeze(n, total) for n, _ in module.network.named_parameters()):
            raise ValueError("freeze: no parameter matches; check layers/heads_only/patterns")

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        net = module.network
        total = num_layers(net.backbone)
        params = dict(net.named_parameters())
        self.frozen = [n for n in params if self.should_freeze(n, total)]
        for name in self.frozen:
            params[name].requires_grad = False

    @override
    def report(self) -> dict[str, float]:
        return {"frozen_tensors": len(self.frozen)}
