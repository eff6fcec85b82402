"""Parameter-efficient fine-tuning through peft: LoRA (Hu et al. 2021) and the rest of the family,
chosen by ``method``: ``lora``, ``adalora`` (Zhang et al. 2023, rank budget reallocated during
training), ``ia3`` (Liu et al. 2022, learned rescaling vectors), ``prompt`` (prompt tuning, Lester et
al. 2021), ``prefix`` (prefix tuning, Li & Liang 2021; deep prompts at every layer, i.e. P-tuning v2)
and ``ptuning`` (P-tuning v1, Liu et al. 2021: prompts from a small encoder). Two forms:

- ``mode=isolation``: the pretrained base is frozen and every task gets its own adapter (and head);
  evaluating task ``j`` activates adapter ``j``. Earlier tasks cannot be forgotten in the
  task-incremental scenario, at the price of needing the task id at test time.
- ``mode=shared``: one adapter trained through the whole stream ("SeqLoRA"), the usual
  parameter-efficient baseline, which forgets like full fine-tuning but with far fewer parameters.

With ``model.quantization=nf4`` the frozen base is 4-bit (QLoRA; CUDA only) and is prepared for
k-bit training (peft's ``prepare_model_for_kbit_training``) before the first adapter.
"""

import torch
from peft import (
    AdaLoraConfig,
    IA3Config,
    LoraConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
    prepare_model_for_kbit_training,
)
from peft.tuners.adalora import RankAllocator
from typing_extensions import override

from cl.engine.callback import ContinualCallback

METHODS = ("lora", "adalora", "ia3", "prompt", "prefix", "ptuning")


class PeftAdapters(ContinualCallback):
    """Args:
    method: one of ``METHODS``.
    mode: ``isolation`` (adapter per task) or ``shared`` (one adapter).
    r, alpha, dropout: LoRA/AdaLoRA rank (AdaLoRA's target rank; it starts at 1.5x), scaling
        numerator and dropout.
    target_modules: module names to adapt (lora, adalora, ia3); None uses peft's default for the
        architecture.
    virtual_tokens: number of virtual tokens (prompt, prefix, ptuning).
    lr: learning rate of the adapters and heads (a frozen base wants a larger one than full
        fine-tuning); None keeps the run's ``optimizer.lr``.
    """

    def __init__(
        self,
        method: str = "lora",
        mode: str = "isolation",
        r: int = 8,
        alpha: int = 16,
        dropout: float = 0.05,
        target_modules: list[str] | None = None,
        virtual_tokens: int = 8,
        lr: float | None = 2e-3,
    ):
        if method not in METHODS:
            raise ValueError(f"lora.method must be one of {METHODS}, got {method!r}")
        if mode not in ("isolation", "shared"):
            raise ValueError(f"lora.mode must be 'isolation' or 'shared', got {mode!r}")
        if r < 1 or not 0 <= dropout < 1 or virtual_tokens < 1:
            raise ValueError(f"lora.r and lora.virtual_tokens must be >= 1 and lora.dropout in [0, 1), got "
                             f"r={r}, virtual_tokens={virtual_tokens}, dropout={dropout}")  # fmt: skip
        if lr is not None and not lr > 0:
            raise ValueError(f"lora.lr must be > 0, got {lr}")
        self.method, self.mode, self.r, self.alpha, self.dropout = method, mode, r, alpha, dropout
        self.target_modules = list(target_modules) if target_modules else None
        self.virtual_tokens, self.lr, self.latest = virtual_tokens, lr, 0

    def config(self, module):
        causal = module.causal_lm
        task_type = TaskType.CAUSAL_LM if causal else TaskType.FEATURE_EXTRACTION
        targets = {"target_modules": self.target_modules} if self.target_modules else {}
        if self.method == "lora":
            return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, **targets)
        if self.method == "adalora":
            # total_step is set to the task's real step count when training starts (on_train_start).
            return AdaLoraConfig(init_r=max(self.r, round(1.5 * self.r)), target_r=self.r, lora_alpha=self.alpha,
                                 lora_dropout=self.dropout, total_step=10**6, **targets)  # fmt: skip
        if self.method == "ia3":
            if self.target_modules:  # peft needs the feed-forward subset; none of the given are treated so
                targets["feedforward_modules"] = []
            return IA3Config(**targets)
        config = {"prompt": PromptTuningConfig, "prefix": PrefixTuningConfig, "ptuning": PromptEncoderConfig}
        return config[self.method](task_type=task_type, num_virtual_tokens=self.virtual_tokens)

    def adapter(self, task_id: int) -> str:
        return f"task{task_id}" if self.mode == "isolation" else "shared"

    @override
    def on_run_start(self, module, stream, completed_tasks) -> None:
        if self.mode == "isolation" and module.scenario == "class":
            raise ValueError(
                "lora isolation picks an adapter by task id, which class-incremental streams do not give "
                "at test time: use stream.scenario=task or strategy.lora.mode=shared"
            )
        if self.method in ("prefix", "ptuning") and not module.causal_lm:
            raise ValueError(f"lora.method={self.method} needs a causal language model (a causal_lm model family); "
                             "encoders support lora, adalora, ia3 and prompt")  # fmt: skip
        if self.target_modules:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in module.network.backbone.named_modules()
                             if isinstance(m, torch.nn.Linear)})  # fmt: skip
            names = {n for n, _ in module.network.backbone.named_modules()}
            missing = [t for t in self.target_modules if t not in linear and t not in names]
            if missing:
                raise ValueError(
                    f"strategy.lora.target_modules {missing} are not modules of this model; "
                    f"its linear modules are named {linear}"
                )
        for t in range(completed_tasks):  # a resumed run: adapters in the order they were made, weights loaded after
            self.on_task_start(module, t, stream, None)

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        net, name = module.network, self.adapter(task_id)
        if not isinstance(net.backbone, PeftModel):
            if getattr(net.backbone, "is_quantized", False):
                net.backbone = prepare_model_for_kbit_training(net.backbone, use_gradient_checkpointing=False)
            net.backbone = get_peft_model(net.backbone, self.config(module), adapter_name=name)
        elif name not in net.backbone.peft_config:
            if self.method == "adalora":  # AdaLoRA trains one adapter at a time
                for config in net.backbone.peft_config.values():
                    config.inference_mode = True
            net.backbone.add_adapter(name, self.config(module))
            if self.method == "adalora":  # peft makes a rank allocator only for the first adapter
                base = net.backbone.base_model
                base.trainable_adapter_name = name
                base.rankallocator = RankAllocator(base.model, net.backbone.peft_config[name], name)
        net.backbone.set_adapter(name)
        self.latest = task_id

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        if self.method == "adalora":
            config = pl_module.network.backbone.peft_config[self.adapter(pl_module.task_id)]
            config.total_step = trainer.estimated_stepping_batches

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # After the optimizer step, with this step's gradients still in place (Lightning zeroes
        # them at the start of the next step), as peft's AdaLoRA recipe has it.
        if self.method == "adalora":
            pl_module.network.backbone.base_model.update_and_allocate(trainer.global_step)

    @override
    def param_groups(self, module, groups: list[dict]) -> list[dict]:
        return [{**g, "lr": self.lr} for g in groups] if self.lr is not None else groups

    @override
    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        encoder = pl_module.network.backbone
        if self.mode == "isolation" and isinstance(encoder, PeftModel):
            # A task not trained yet has no adapter: it is scored with the newest one.
            encoder.set_adapter(self.adapter(min(dataloader_idx, self.latest)))

    @override
    def report(self) -> dict[str, float]:
        return {"adapters": self.latest + 1 if self.mode == "isolation" else 1}
