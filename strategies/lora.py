"""LoRA (Hu et al. 2021) through peft, in two forms:

- ``mode=isolation``: the pretrained base is frozen and every task gets its own adapter (and head);
  evaluating task ``j`` activates adapter ``j``. Earlier tasks cannot be forgotten in the
  task-incremental scenario, at the price of needing the task id at test time.
- ``mode=shared``: one adapter trained through the whole stream ("SeqLoRA"), the usual
  parameter-efficient baseline, which forgets like full fine-tuning but with far fewer parameters.
"""

from peft import LoraConfig, PeftModel, get_peft_model
from typing_extensions import override

from cl.callback import ContinualCallback


class LoRA(ContinualCallback):
    """Args:
    mode: ``isolation`` (adapter per task) or ``shared`` (one adapter).
    r, alpha, dropout: LoRA rank, scaling numerator and dropout.
    target_modules: module names to adapt; None uses peft's default for the architecture.
    lr: learning rate of the adapters and heads (LoRA wants a larger one than full fine-tuning);
        None keeps the run's ``optimizer.lr``.
    """

    def __init__(
        self,
        mode: str = "isolation",
        r: int = 8,
        alpha: int = 16,
        dropout: float = 0.05,
        target_modules: list[str] | None = None,
        lr: float | None = 2e-3,
    ):
        if mode not in ("isolation", "shared"):
            raise ValueError(f"lora.mode must be 'isolation' or 'shared', got {mode!r}")
        if r < 1 or not 0 <= dropout < 1:
            raise ValueError(f"lora.r must be >= 1 and lora.dropout in [0, 1), got r={r}, dropout={dropout}")
        self.mode, self.r, self.alpha, self.dropout = mode, r, alpha, dropout
        if lr is not None and not lr > 0:
            raise ValueError(f"lora.lr must be > 0, got {lr}")
        self.target_modules = list(target_modules) if target_modules else None
        self.lr, self.latest = lr, 0

    def config(self) -> LoraConfig:
        return LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=self.target_modules
        )

    def adapter(self, task_id: int) -> str:
        return f"task{task_id}" if self.mode == "isolation" else "shared"

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        if self.mode == "isolation" and module.scenario == "class":
            raise ValueError(
                "lora isolation picks an adapter by task id, which class-incremental streams do not give "
                "at test time: use stream.scenario=task or strategy.lora.mode=shared"
            )
        net, name = module.network, self.adapter(task_id)
        if not isinstance(net.encoder, PeftModel):
            net.encoder = get_peft_model(net.encoder, self.config(), adapter_name=name)
        elif name not in net.encoder.peft_config:
            net.encoder.add_adapter(name, self.config())
        net.encoder.set_adapter(name)
        self.latest = task_id

    @override
    def param_groups(self, module, groups: list[dict]) -> list[dict]:
        return [{**g, "lr": self.lr} for g in groups] if self.lr is not None else groups

    @override
    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        encoder = pl_module.network.encoder
        if self.mode == "isolation" and isinstance(encoder, PeftModel):
            # A task not trained yet has no adapter: it is scored with the newest one.
            encoder.set_adapter(self.adapter(min(dataloader_idx, self.latest)))

    @override
    def report(self) -> dict[str, float]:
        return {"adapters": self.latest + 1 if self.mode == "isolation" else 1}
