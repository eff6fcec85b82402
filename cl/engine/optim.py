"""The optimizer a config names, as a partial taking parameter groups."""

import inspect

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf


def fused_optimizer(precision) -> bool:
    """``optimizer.fused`` by default: PyTorch's fused AdamW updates every parameter in one kernel (the
    same update, 4x faster than the per-tensor loop on a CPU, where the loop is PyTorch's default), but
    Lightning refuses to clip a fused optimizer's gradients under mixed precision, so off there."""
    return str(precision) not in ("16-mixed", "bf16-mixed", "16", "bf16")


OmegaConf.register_new_resolver("cl.fused", fused_optimizer, replace=True)


def optimizer_factory(node: DictConfig):
    """The optimizer as a partial taking parameter groups; ``fused`` is kept only for an optimizer
    that has it, so that switching ``optimizer._target_`` does not need a second override."""
    target = get_class(node._target_)
    if "fused" in node and "fused" not in inspect.signature(target).parameters:
        node = OmegaConf.masked_copy(node, [k for k in node if k != "fused"])
    return instantiate(node, _partial_=True)
