"""O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning").

Every task trains a new LoRA adapter on the frozen base while the earlier tasks' adapters stay frozen
and active: the model is the base plus the sum of all adapters, so no task id is needed at test time
(it runs class-incremental streams too). The new adapter's update is pushed into a subspace
orthogonal to the earlier ones by a penalty on the overlap of the LoRA A matrices, and kept small by
an L2 term:

    loss = CE + orthogonal * mean_{modules, j<t} sum |A_t A_j^T|  +  l2 * mean_{modules} (||A_t|| + ||B_t||)

The reference code sums the overlap over every adapted module and earlier adapter, so its penalty
grows with depth and stream length (users report it in the thousands against an LM loss near 1) and
one lambda does not carry over between models. Here it is the mean over those pairs: the same
``orthogonal`` means the same per-module pressure on MiniLM (12 adapted modules) and SmolLM2 (60).
"""

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from typing_extensions import override

from cl.engine.callback import ContinualCallback


class OLoRA(ContinualCallback):
    """Args:
    r, alpha, dropout, target_modules: each task's LoRA adapter (``target_modules`` None: peft's default).
    orthogonal: weight of the overlap penalty (lambda_1 of the paper).
    l2: weight of the new adapter's L2 term (lambda_2).
    lr: learning rate of the adapters and heads; None keeps ``optimizer.lr``.
    """

    def __init__(self, r: int = 8, alpha: int = 16, dropout: float = 0.05, target_modules: list[str] | None = None,
                 orthogonal: float = 0.5, l2: float = 0.0, lr: float | None = 2e-3):  # fmt: skip
        if r < 1 or orthogonal < 0 or l2 < 0 or (lr is not None and lr <= 0):
            raise ValueError(f"olora needs r >= 1, orthogonal and l2 >= 0 and lr > 0, got r={r}, "
                             f"orthogonal={orthogonal}, l2={l2}, lr={lr}")  # fmt: skip
        self.r, self.alpha, self.dropout, self.orthogonal, self.l2, self.lr = r, alpha, dropout, orthogonal, l2, lr
        self.target_modules = list(target_modules) if target_modules else None
        self.task = 0

    def config(self) -> LoraConfig:
        targets = {"target_modules": self.target_modules} if self.target_modules else {}
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, **targets)

    @override
    def on_run_start(self, module, stream, completed_tasks) -> None:
        for t in range(completed_tasks):  # a resumed run: the adapters first, their weights load after
            self.on_task_start(module, t, stream, None)

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        net, name = module.network, f"task{task_id}"
        if not isinstance(net.backbone, PeftModel):
            net.backbone = get_peft_model(net.backbone, self.config(), adapter_name=name)
        elif name not in net.backbone.peft_config:
            net.backbone.add_adapter(name, self.config())
        # Every adapter so far takes part in the forward pass; only the new one learns.
        net.backbone.base_model.set_adapter([f"task{t}" for t in range(task_id + 1)])
        for pname, p in net.backbone.named_parameters():
            if "lora_" in pname and f".{name}." not in pname:
                p.requires_grad_(False)
        self.task = task_id

    def pairs(self, module) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        """(new A, earlier A) for every adapted module and earlier adapter."""
        found = []
        for layer in module.network.backbone.modules():
            lora_a = getattr(layer, "lora_A", None)
            if isinstance(lora_a, torch.nn.ModuleDict) and f"task{self.task}" in lora_a:
                new = lora_a[f"task{self.task}"].weight
                found += [(new, lora_a[f"task{j}"].weight) for j in range(self.task) if f"task{j}" in lora_a]
        return found

    @override
    def loss_terms(self, module, batch, outputs, terms: dict) -> dict:
        if self.orthogonal and self.task > 0:
            pairs = self.pairs(module)
            terms["orthogonal"] = self.orthogonal * torch.stack([(a @ b.T).abs().sum() for a, b in pairs]).mean()
        if self.l2:
            name, norms = f"task{self.task}", []
            for layer in module.network.backbone.modules():
                if isinstance(getattr(layer, "lora_A", None), torch.nn.ModuleDict) and name in layer.lora_A:
                    norms.append(layer.lora_A[name].weight.norm() + layer.lora_B[name].weight.norm())
            terms["l2"] = self.l2 * torch.stack(norms).mean()
        return terms

    @override
    def param_groups(self, module, groups: list[dict]) -> list[dict]:
        return [{**g, "lr": self.lr} for g in groups] if self.lr is not None else groups

    @override
    def report(self) -> dict[str, float]:
        return {"adapters": self.task + 1}
