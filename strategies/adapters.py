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

``routing`` (isolation, class-incremental) removes the need for the task id: at each task's end a
``cl.engine.routing.Router`` is fitted on the frozen base's features of the task's training data, and
at test time each input is scored by the adapter (and the classes) of the task it is routed to. The
single class-incremental head is trained on the current task's classes only (their slice of the
logits), so no task's training moves another task's decision. The report gives the share of test
inputs routed to their own task (``routing_acc``) and the accuracy with the true task's adapter
(``oracle_acc``), over the tasks seen so far, beside the routed accuracy of the matrix.

With ``model.quantization=nf4`` the frozen base is 4-bit (QLoRA; CUDA only) and is prepared for
k-bit training (peft's ``prepare_model_for_kbit_training``) before the first adapter.
"""

import torch
import torch.nn.functional as F
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
from cl.engine.routing import Router

METHODS = ("lora", "adalora", "ia3", "prompt", "prefix", "ptuning")


def rows_of(batch: dict, rows: torch.Tensor, n: int) -> dict:
    """The batch restricted to ``rows`` (every per-row tensor of its ``n`` rows)."""
    return {k: v[rows] if torch.is_tensor(v) and v.dim() and len(v) == n else v for k, v in batch.items()}


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
    routing: None (the task id picks the adapter), ``prototype`` or ``mahalanobis`` (the base model's
        features do, ``cl.engine.routing``); class-incremental streams, isolation only.
    shrinkage: of the shared covariance towards the identity (``mahalanobis``).
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
        routing: str | None = None,
        shrinkage: float = 0.1,
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
        self.prefix = ""  # of the adapter names: runs trained together on one base keep theirs apart (cl.engine.packed)
        if routing is not None and mode != "isolation":
            raise ValueError(f"lora.routing picks one of the per-task adapters: it needs lora.mode=isolation, "
                             f"got {mode!r}")  # fmt: skip
        self.routing = routing
        self.router = Router(routing, shrinkage) if routing else None
        # This evaluation's inputs: routed to their own task, right with their own task's adapter, all.
        self.counts = torch.zeros(3)

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
        return f"{self.prefix}task{task_id}" if self.mode == "isolation" else f"{self.prefix}shared"

    @override
    def on_run_start(self, module, stream, completed_tasks) -> None:
        if self.mode == "isolation" and module.scenario == "class" and not self.routing:
            raise ValueError(
                "lora isolation picks an adapter by task id, which class-incremental streams do not give "
                "at test time: use strategy.lora.routing=mahalanobis, stream.scenario=task or strategy.lora.mode=shared"
            )
        if self.routing and module.scenario != "class":
            raise ValueError("lora.routing stands in for the task id, which task-incremental streams give: use it "
                             "with stream.scenario=class")  # fmt: skip
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
        if self.mode == "isolation" and isinstance(encoder, PeftModel) and not self.routing:
            # A task not trained yet has no adapter: it is scored with the newest one.
            encoder.set_adapter(self.adapter(min(dataloader_idx, self.latest)))

    @override
    def evaluation_inputs(self, module, task_id: int) -> dict[str, torch.Tensor] | None:
        """Isolation with the task id: task ``task_id`` is scored through the frozen base, its own
        adapter (the newest for a task not trained yet) and its own head, nothing of the others."""
        encoder = module.network.backbone
        if self.mode != "isolation" or self.routing or not isinstance(encoder, PeftModel):
            return None
        others = set(encoder.peft_config) - {self.adapter(min(task_id, self.latest))}
        heads = {f"network.heads.{h}" for h in range(len(module.class_offsets)) if h != module.head_of(task_id)}
        state = [*module.named_parameters(), *module.named_buffers()]
        mine = lambda n: not others & set(n.split(".")) and not any(n.startswith(f"{h}.") for h in heads)  # noqa: E731
        return {n: t for n, t in state if mine(n)}

    @override
    def on_task_end(self, module, task_id, stream, data) -> None:
        if not self.routing:
            return
        features, labels, training = [], [], module.training
        module.eval()
        with torch.no_grad(), module.network.backbone.disable_adapter():
            for batch in stream.eval_loader(data, 64):
                batch = {k: v.to(module.device) for k, v in batch.items()}
                features.append(module.route_features(batch))
                labels.append(batch["labels"])
        module.train(training)
        self.router.add_task(task_id, torch.cat(features), torch.cat(labels))

    def slice_of(self, module, task_id: int, classes: int) -> tuple[int, int]:
        """Task ``task_id``'s classes in the class-incremental head (of ``classes`` in all)."""
        bounds = [*module.class_offsets, classes]
        return bounds[task_id], bounds[task_id + 1]

    @override
    def loss_terms(self, module, batch, outputs, terms: dict) -> dict:
        if self.routing and not module.causal_lm:  # the current task's classes only (see the docstring)
            logits, labels = outputs.groups[0].logits, outputs.groups[0].labels
            a, b = self.slice_of(module, module.task_id, logits.shape[-1])
            if not bool(((labels >= a) & (labels < b)).all()):
                raise ValueError("lora.routing trains each adapter on its own task's examples only; it does not "
                                 "compose with strategies that add other tasks' examples (replay)")  # fmt: skip
            terms["ce"] = F.cross_entropy(logits[:, a:b], labels - a)
        return terms

    def task_probs(self, module, batch: dict, tasks: torch.Tensor) -> torch.Tensor:
        """Each row's class probabilities through the adapter of its task in ``tasks``, over that task's
        classes only (zero elsewhere)."""
        out = None
        for t in tasks.unique().tolist():
            rows = (tasks == t).nonzero().squeeze(1)
            part = rows_of(batch, rows, len(tasks))
            module.network.backbone.set_adapter(self.adapter(t))
            probs = module.class_probs(part, 0)
            out = torch.zeros(len(tasks), probs.shape[-1], device=probs.device) if out is None else out
            a, b = self.slice_of(module, t, probs.shape[-1])
            out[rows, a:b] = probs[:, a:b] / probs[:, a:b].sum(-1, keepdim=True).clamp(min=1e-30)
        return out

    @override
    def predict_proba(self, module, batch: dict, head: int) -> torch.Tensor | None:
        if not self.routing or not len(self.router) or head >= len(module.class_offsets):
            return None  # before any adapter, and the general-ability probes: the plain prediction
        true = batch["task_ids"]
        if module.trainer.validating:  # choosing the current task's epoch: its own adapter, not routed
            return self.task_probs(module, batch, torch.full_like(true, module.task_id))
        with module.network.backbone.disable_adapter():
            routed = self.router.route(module.route_features(batch))
        probs = self.task_probs(module, batch, routed)
        seen, wrong = true <= self.latest, routed != true
        oracle = probs.clone()
        if bool((wrong & seen).any()):
            rows = (wrong & seen).nonzero().squeeze(1)
            part = rows_of(batch, rows, len(true))
            oracle[rows] = self.task_probs(module, part, true[rows])
        right = oracle.argmax(-1) == module.head_labels(batch["labels"], true)
        self.counts += torch.tensor([float((~wrong & seen).sum()), float((right & seen).sum()), float(seen.sum())])
        module.network.backbone.set_adapter(self.adapter(self.latest))
        return probs

    @override
    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self.counts = torch.zeros(3)

    @override
    def state_dict(self) -> dict:
        return {"router": self.router.state_dict()} if self.router is not None else {}

    @override
    def load_state_dict(self, state: dict) -> None:
        if self.router is not None and state.get("router"):
            self.router.load_state_dict(state["router"])

    @override
    def report(self) -> dict[str, float]:
        out = {"adapters": self.latest + 1 if self.mode == "isolation" else 1}
        if self.routing and self.counts[2] > 0:
            out |= {"routing_acc": round(float(self.counts[0] / self.counts[2]), 6),
                    "oracle_acc": round(float(self.counts[1] / self.counts[2]), 6)}  # fmt: skip
        return out
