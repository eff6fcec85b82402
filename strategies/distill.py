"""Knowledge distillation from the model as it was at the end of the previous task (LwF, Li & Hoiem
2016): ``loss = alpha*CE + (1-alpha) * T^2 * KL(softmax(z_teacher/T) || softmax(z_student/T))``,
the KL taken through every earlier task's head (the earlier classes in class-incremental streams)
on the current task's inputs, and on replayed examples when combined with ``replay``.

No copy of the teacher is kept: before a task's first step the model still *is* the teacher, so
its logits for every training example (and every replay-memory slot) are computed once, in eval
mode without gradients, and looked up by row at each step of every epoch.
"""

import time

import torch
import torch.nn.functional as F
from typing_extensions import override

from cl.engine.callback import ContinualCallback, ExampleMemory
from cl.engine.module import Distributions
from tasks.batching import ROWS, SLOTS


def kl_divergence(student: Distributions, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """``KL(softmax(teacher/t) || softmax(student/t))`` for each distribution (span) of ``student``,
    averaged over the positions that count, then over the spans."""
    kl = []
    for a, b in student.spans:
        log_p = F.log_softmax(teacher[..., a:b].float() / t, -1)
        log_q = F.log_softmax(student.logits[..., a:b].float() / t, -1)
        per_class = F.kl_div(log_q, log_p, log_target=True, reduction="none")
        if student.mask is None:  # one distribution per row
            kl.append(per_class.sum() / len(per_class))
        else:
            per_position = per_class.sum(-1)
            kl.append((per_position * student.mask).sum() / student.mask.sum().clamp(min=1))
    return sum(kl) / len(kl)


class Distill(ContinualCallback):
    """Args:
    alpha: weight of the cross-entropy; ``1 - alpha`` goes to distillation.
    temperature: softmax temperature ``T`` of both distributions.
    batch_size: batch size used to compute the teacher's logits.
    storage: dtype the teacher's logits are kept in; a language model's answer-token logits span
        the vocabulary, and ``bfloat16`` halves their memory.
    """

    def __init__(self, alpha: float = 0.5, temperature: float = 2.0, batch_size: int = 128, storage: str = "float32"):
        if not 0 <= alpha <= 1:
            raise ValueError(f"distill.alpha must be in [0, 1], got {alpha}")
        if not temperature > 0:
            raise ValueError(f"distill.temperature must be > 0, got {temperature}")
        if storage not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"distill.storage must be float32, bfloat16 or float16, got {storage!r}")
        self.alpha, self.temperature, self.batch_size = alpha, temperature, batch_size
        self.storage_dtype = getattr(torch, storage)
        self.teacher_rows: torch.Tensor | None = None  # [rows, old classes]
        self.teacher_slots: torch.Tensor | None = None  # [memory slots, old classes]
        self.kd_sum, self.kd_steps = torch.zeros(()), 0
        self.teacher_seconds = 0.0
        self.in_task = False

    @torch.no_grad()
    def teacher_logits(self, module, examples) -> torch.Tensor:
        """Old-head logits for every example (a Dataset or a list of rows), in their order; the pass
        itself runs length-sorted so that its batches carry little padding."""
        lengths = (
            list(examples["length"]) if hasattr(examples, "column_names") else [len(e["input_ids"]) for e in examples]
        )
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        out = [None] * len(order)
        for i in range(0, len(order), self.batch_size):
            chunk = order[i : i + self.batch_size]
            rows = [examples[j] for j in chunk]
            batch = {k: v.to(module.device) for k, v in self.stream.collate(rows).items()}
            for j, row in zip(chunk, module.distributions(batch).logits.to(self.storage_dtype)):
                out[j] = row
        return torch.stack(out)

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        self.stream, self.data, self.in_task = stream, data, True
        self.kd_sum, self.kd_steps, self.teacher_seconds = torch.zeros(()), 0, 0.0
        self.teacher_rows = self.teacher_slots = None

    @override
    def on_task_end(self, module, task_id, stream, data) -> None:
        self.in_task = False

    @override
    def state_dict(self) -> dict:
        # Within a task (a mid-task checkpoint) the model has moved on from the teacher, so the
        # teacher's logits are part of the state; at a task boundary the model is the next teacher.
        if not self.in_task:
            return {}
        return {"teacher_rows": self.teacher_rows, "teacher_slots": self.teacher_slots, "kd_sum": self.kd_sum,
                "kd_steps": self.kd_steps, "teacher_seconds": self.teacher_seconds}  # fmt: skip

    @override
    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        # Here the model is already on its device; it is still the previous task's final model.
        if pl_module.task_id == 0 or self.teacher_rows is not None:
            return
        start = time.perf_counter()
        pl_module.eval()
        self.teacher_rows = self.teacher_logits(pl_module, self.data)
        memory = next((cb.memory_examples() for cb in pl_module.cl_callbacks if isinstance(cb, ExampleMemory)), None)
        if memory:
            self.teacher_slots = self.teacher_logits(pl_module, memory)
        pl_module.train()
        self.teacher_seconds = time.perf_counter() - start

    @override
    def loss_terms(self, module, batch: dict, outputs, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.teacher_rows is None:
            return terms
        rows = batch[ROWS]
        slots = batch.get(SLOTS, torch.full_like(rows, -1))
        teacher = torch.zeros(len(rows), *self.teacher_rows.shape[1:], device=rows.device)
        teacher[rows >= 0] = self.teacher_rows[rows[rows >= 0]].to(rows.device, teacher.dtype)
        if self.teacher_slots is not None:
            teacher[slots >= 0] = self.teacher_slots[slots[slots >= 0]].to(rows.device, teacher.dtype)
        t = self.temperature
        kd = (1 - self.alpha) * t**2 * kl_divergence(module.distributions(batch, outputs), teacher, t)
        # Summed on the device: reading a float here would stall a GPU at every step.
        self.kd_sum = self.kd_sum.to(kd.device) + kd.detach()
        self.kd_steps += 1
        return {**terms, "ce": self.alpha * terms["ce"], "kd": kd}

    @override
    def report(self) -> dict[str, float]:
        kd_mean = float(self.kd_sum) / self.kd_steps if self.kd_steps else 0.0
        return {"kd_mean": kd_mean, "teacher_seconds": self.teacher_seconds}
