"""Where a parameter sits in a transformer's depth, for layer-wise learning rates and freezing."""

import re

from torch import nn

_LAYER = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")
_EMBEDDING = re.compile(r"embed|wte|wpe|shared")


def num_layers(module: nn.Module) -> int:
    found = [int(m.group(1)) for name, _ in module.named_parameters() if (m := _LAYER.search(f".{name}"))]
    return max(found) + 1 if found else 0


def depth(name: str, layers: int) -> int:
    """Layer index from the bottom: embeddings 0, transformer block i is i+1, everything above
    the blocks (pooler, heads) is ``layers + 1``."""
    if m := _LAYER.search(f".{name}"):
        return int(m.group(1)) + 1
    if _EMBEDDING.search(name):
        return 0
    return layers + 1
