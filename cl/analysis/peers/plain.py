"""The four tasks run by a plain PyTorch loop written without this framework: the reference for
what the same work costs with nothing around it.

    python cl/analysis/peers/plain.py DATA MODEL --strategy naive|distill|replay

One linear head per task on the encoder's mean-pooled features (dropout 0.1), fused AdamW (lr 5e-5,
weight decay 0.01), linear schedule with 10% warm-up restarted per task, gradient clipping at 1.0,
batch 16, one epoch, a seeded shuffle; after every task (and once before) every task's test split is
scored in batches of 32 sorted by length. distill: LwF, ``0.5*CE + 0.5*T^2*KL`` (T = 2) through every
earlier head against the model as it was at the task's start; replay: 200 examples by reservoir
sampling, 16 replayed per batch of 16 (Avalanche's default), each through its own head.
"""

import copy
import math
import random
import sys
import time
from pathlib import Path

start = time.perf_counter()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoModel, get_scheduler  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pad, report, setup  # noqa: E402


class Net(nn.Module):
    def __init__(self, encoder, classes: list[int]):
        super().__init__()
        self.encoder, self.dropout = encoder, nn.Dropout(0.1)
        self.heads = nn.ModuleList(nn.Linear(encoder.config.hidden_size, c) for c in classes)

    def features(self, ids, mask):
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)

    def logits(self, ids, mask, heads: list[int]) -> list[torch.Tensor]:
        f = self.dropout(self.features(ids, mask))
        return [self.heads[h](f) for h in heads]


def evaluate(net: Net, tasks: list[dict]) -> list[float]:
    net.eval()
    out = []
    with torch.inference_mode():
        for t, task in enumerate(tasks):
            seqs, labels = task["test"]
            order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
            right = 0
            for i in range(0, len(order), 32):
                rows = order[i : i + 32]
                ids, mask = pad([seqs[r] for r in rows])
                pred = net.logits(ids, mask, [t])[0].argmax(-1)
                right += int((pred == torch.tensor([labels[r] for r in rows])).sum())
            out.append(round(right / len(seqs), 6))
    net.train()
    return out


def main() -> None:
    args, tasks = setup()
    net = Net(AutoModel.from_pretrained(args.model), [t["classes"] for t in tasks])
    phases = {"setup_s": time.perf_counter() - start, "train_s": 0.0, "eval_s": 0.0}
    clock = time.perf_counter()
    matrix = [evaluate(net, tasks)]
    phases["eval_s"] += time.perf_counter() - clock
    memory, seen, rng = [], 0, random.Random(args.seed)
    for t, task in enumerate(tasks):
        clock = time.perf_counter()
        teacher = copy.deepcopy(net).eval() if args.strategy == "distill" and t > 0 else None
        seqs, labels = task["train"]
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01, fused=True)
        steps = math.ceil(len(seqs) / 16)
        sched = get_scheduler("linear", opt, int(0.1 * steps), steps)
        order = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(args.seed * 1000 + t)).tolist()
        for i in range(0, len(order), 16):
            rows = order[i : i + 16]
            batch = [(seqs[r], labels[r], t) for r in rows]
            if args.strategy == "replay" and memory:
                batch += [memory[rng.randrange(len(memory))] for _ in range(16)]
            ids, mask = pad([b[0] for b in batch])
            y, heads = torch.tensor([b[1] for b in batch]), torch.tensor([b[2] for b in batch])
            f = net.dropout(net.features(ids, mask))
            ce = sum(F.cross_entropy(net.heads[h](f[heads == h]), y[heads == h], reduction="sum")
                     for h in heads.unique().tolist()) / len(batch)  # fmt: skip
            loss = ce
            if teacher is not None:
                with torch.no_grad():
                    old = teacher.logits(ids, mask, list(range(t)))
                new = [net.heads[h](f) for h in range(t)]
                kl = sum(F.kl_div(F.log_softmax(s / 2, -1), F.log_softmax(o / 2, -1), log_target=True,
                                  reduction="batchmean") for s, o in zip(new, old)) / t  # fmt: skip
                loss = 0.5 * ce + 0.5 * 4 * kl
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
        if args.strategy == "replay":  # reservoir sampling over every example seen
            for example in zip(seqs, labels, [t] * len(seqs)):
                seen += 1
                if len(memory) < 200:
                    memory.append(example)
                elif (j := rng.randrange(seen)) < 200:
                    memory[j] = example
        del teacher
        phases["train_s"] += time.perf_counter() - clock
        clock = time.perf_counter()
        matrix.append(evaluate(net, tasks))
        phases["eval_s"] += time.perf_counter() - clock
    report("plain", args.strategy, matrix[1:], phases, start)


if __name__ == "__main__":
    main()
