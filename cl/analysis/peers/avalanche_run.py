"""The four tasks run by Avalanche 0.6.0 (Lomonaco et al. 2021), as an Avalanche user would write it:
its Naive, LwF and Replay strategies on a task-incremental benchmark of token-id tensors, a
``MultiTaskModule`` with one head per task (padding a batch's narrower heads the way its
``MultiHeadClassifier`` masks inactive units), plugins for what the other systems also do (a fresh
optimizer state and the linear schedule with 10% warm-up per experience, gradient clipping at 1.0)
and an evaluator that computes accuracy only. Runs in its own virtual environment
(``.venv-avalanche``, made by ``scripts/avalanche_venv.sh``), where this project is not installed.

    python cl/analysis/peers/avalanche_run.py DATA MODEL --strategy naive|distill|replay

Texts are padded to 64 tokens (Avalanche stacks fixed-size tensors); the model cuts each batch to
its longest real sequence, so padding costs no compute in training. LwF's alpha is T^2 = 4 on
Avalanche's ``CE + alpha * sum KL`` (our ``0.5 CE + 0.5 T^2 KL``, up to a factor of 2 Adam ignores).
"""

import sys
import time
from collections import defaultdict
from pathlib import Path

start = time.perf_counter()
import torch  # noqa: E402
from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark  # noqa: E402
from avalanche.core import SupervisedPlugin  # noqa: E402
from avalanche.evaluation.metrics import accuracy_metrics  # noqa: E402
from avalanche.models import MultiTaskModule  # noqa: E402
from avalanche.training import LwF, Naive, Replay  # noqa: E402
from avalanche.training.plugins import EvaluationPlugin  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoModel, get_scheduler  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MAX_LENGTH, pad, report, setup  # noqa: E402


class TextNet(MultiTaskModule):
    def __init__(self, encoder, classes: list[int]):
        super().__init__()
        self.encoder, self.dropout = encoder, nn.Dropout(0.1)
        self.heads = nn.ModuleList(nn.Linear(encoder.config.hidden_size, c) for c in classes)

    def forward(self, x: torch.Tensor, task_labels) -> torch.Tensor:
        # MultiTaskModule.forward pads a narrower head's logits with zeros up to the widest head (16
        # classes here), and the loss and the argmax then take the padding for classes: news learned
        # to 0.57 instead of about 0.9. Pad with the value Avalanche's own MultiHeadClassifier gives
        # inactive units (-1000) instead, so every system scores each task over its own classes.
        if task_labels is None or isinstance(task_labels, int):  # every head (LwF's teacher) or one
            return super().forward(x, task_labels)
        out = None
        for task in task_labels.unique().tolist():
            rows = task_labels == task
            logits = self.forward_single_task(x[rows], task)
            if out is None:
                out = logits.new_full((len(x), max(h.out_features for h in self.heads)), -1000.0)
            out[rows, : logits.shape[1]] = logits
        return out

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        mask = (x != 0).long()
        width = int(mask.sum(1).max())
        x, mask = x[:, :width], mask[:, :width]
        hidden = self.encoder(input_ids=x, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return self.heads[task_label](self.dropout((hidden * m).sum(1) / m.sum(1).clamp(min=1)))


class Schedule(SupervisedPlugin):
    """A fresh optimizer state, the linear schedule with warm-up restarted every experience, and
    gradient clipping: what the other systems do. (Avalanche keeps AdamW's moments from one
    experience to the next unless told otherwise; the others start each task with a new optimizer.)"""

    def before_training_exp(self, strategy, **kwargs):
        strategy.optimizer.state = defaultdict(dict)
        steps = len(strategy.dataloader) * strategy.train_epochs
        self.schedule = get_scheduler("linear", strategy.optimizer, int(0.1 * steps), steps)

    def before_update(self, strategy, **kwargs):
        torch.nn.utils.clip_grad_norm_(strategy.model.parameters(), 1.0)

    def after_update(self, strategy, **kwargs):
        self.schedule.step()


def main() -> None:
    args, tasks = setup()

    def tensors(split: tuple) -> list[torch.Tensor]:
        return [pad(split[0], MAX_LENGTH)[0], torch.tensor(split[1])]

    bench = tensors_benchmark(train_tensors=[tensors(t["train"]) for t in tasks],
                              test_tensors=[tensors(t["test"]) for t in tasks],
                              task_labels=list(range(len(tasks))))  # fmt: skip
    model = TextNet(AutoModel.from_pretrained(args.model), [t["classes"] for t in tasks])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, fused=True)
    common = dict(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(), train_mb_size=16,
                  train_epochs=1, eval_mb_size=32, device="cpu", plugins=[Schedule()],
                  evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))  # fmt: skip
    if args.strategy == "distill":
        strategy = LwF(alpha=4.0, temperature=2.0, **common)
    elif args.strategy == "replay":
        strategy = Replay(mem_size=200, **common)  # memory batches of the same size: 16 + 16
    else:
        strategy = Naive(**common)
    phases = {"setup_s": time.perf_counter() - start, "train_s": 0.0, "eval_s": 0.0}

    def evaluate() -> list[float]:
        clock = time.perf_counter()
        metrics = strategy.eval(bench.test_stream)
        phases["eval_s"] += time.perf_counter() - clock
        return [round(float(metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Task{t:03d}/Exp{t:03d}"]), 6)
                for t in range(len(tasks))]  # fmt: skip

    evaluate()  # before any training, as the other systems do
    matrix = []
    for experience in bench.train_stream:
        clock = time.perf_counter()
        strategy.train(experience)
        phases["train_s"] += time.perf_counter() - clock
        matrix.append(evaluate())
    report("avalanche", args.strategy, matrix, phases, start)


if __name__ == "__main__":
    main()
