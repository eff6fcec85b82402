"""``python -m cl.analysis.bench --lm``: language-model throughput on the embedded LM stream.

Measured side by side in one process on ``experiment=text4_lm`` (SmolLM2-135M-Instruct): training
tokens per second in fp32 and in bf16 autocast (alternating rounds, the ratio is the median of the
rounds' ratios), greedy generation tokens per second batched and one prompt at a time, and the
share of real (not padding) tokens in training batches (shuffled, and grouped by length) and in
evaluation batches (sorted by length). Writes ``docs/benchmarks_lm.md``.
"""

import statistics
import time
from pathlib import Path

import lightning as L
import torch

from cl.analysis.timing import StepClock, experiment, platform_line, table
from cl.engine.loop import ContinualLoop
from cl.engine.results import peak_rss_mb

PRESET = "experiment=text4_lm"


class TokenCount(L.Callback):
    """Real (not padding) tokens of every training batch."""

    def __init__(self):
        self.real: list[int] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.real.append(int(batch["attention_mask"].sum()))


def train_rate(precision: str, task: int, steps: int, out: str) -> float:
    """Real tokens trained per second over ``steps`` steps of one task (the first two left out)."""
    exp = experiment(PRESET, f"trainer.precision={precision}")
    clock, count = StepClock(), TokenCount()
    loop = ContinualLoop(exp, out)
    loop.callbacks = [*loop.callbacks, clock, count]
    loop.settings.trainer |= {"max_steps": steps, "max_epochs": -1}
    loop.train_task(task)
    seconds = clock.steps()[2:]
    return sum(count.real[2 : 2 + len(seconds)]) / sum(seconds)


def generation_rates(batch_size: int, prompts: int = 32) -> dict:
    """Greedy generation on the generative task's test prompts: new tokens per second, batched
    (length-sorted batches of ``batch_size``, KV cache) and one prompt at a time, bf16 autocast."""
    exp = experiment(PRESET)
    module, stream = exp.module.eval(), exp.stream
    j = next(i for i, t in enumerate(stream.tasks) if t.kind == "generate")
    batches = list(stream.test_loaders(batch_size)[j])
    rows = [p for b in batches for p in module.prompt_ids(b)][:prompts]
    budget = module.max_new_tokens[j]

    def run(size: int) -> float:
        tokens, start = 0, time.perf_counter()
        for i in range(0, len(rows), size):
            for out in module.generate(rows[i : i + size], budget, cut=False):
                tokens += out.index(module.eos_id) + 1 if module.eos_id in out else len(out)
        return tokens / (time.perf_counter() - start)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        run(batch_size)  # warm-up
        batched, single = run(batch_size), run(1)
    return {"batched": batched, "single": single, "prompts": len(rows), "task": stream.tasks[j].name}


def real_share(group_by_length: bool) -> dict:
    """Real tokens / computed tokens over every task's training batches and evaluation batches."""
    exp = experiment(PRESET)
    stream, cfg = exp.stream, exp.cfg
    train = [0, 0]
    for t, task in enumerate(stream.tasks):
        for b in stream.train_loader(task.train, cfg.batch_size, seed=t, group_by_length=group_by_length):
            train[0] += int(b["attention_mask"].sum())
            train[1] += b["attention_mask"].numel()
    test = [0, 0]
    for loader in stream.test_loaders(cfg.eval_batch_size):
        for b in loader:
            test[0] += int(b["attention_mask"].sum())
            test[1] += b["attention_mask"].numel()
    return {"train": train[0] / train[1], "eval": test[0] / test[1]}


def main(out: str, doc: str, rounds: int = 3, steps: int = 10) -> None:
    torch.use_deterministic_algorithms(True, warn_only=True)  # what the Trainer sets
    task = 1  # sentiment: short, varied lengths
    fp32, bf16 = [], []
    for _ in range(rounds):
        fp32.append(train_rate("32-true", task, steps, out))
        bf16.append(train_rate("bf16-mixed", task, steps, out))
    ratios = [b / f for f, b in zip(fp32, bf16)]
    gen = generation_rates(experiment(PRESET).cfg.eval_batch_size)
    shuffled, grouped = real_share(False), real_share(True)
    full, shared = [], []
    for _ in range(rounds):
        full.append(ranking_seconds(False))
        shared.append(ranking_seconds(True))
    speedup = statistics.median(f / s for f, s in zip(full, shared))
    rows = [
        ("training, real tokens/s, fp32", f"{statistics.median(fp32):.0f}", "", None),
        ("training, real tokens/s, bf16 autocast", f"{statistics.median(bf16):.0f}", "", None),
        ("bf16 / fp32 training throughput", f"{statistics.median(ratios):.2f} (rounds {[round(r, 2) for r in ratios]})", "> 1", statistics.median(ratios) > 1),
        (f"generation ({gen['task']}), new tokens/s, batched", f"{gen['batched']:.0f}", "", None),
        ("generation, new tokens/s, one prompt at a time", f"{gen['single']:.0f}", "", None),
        ("batched / one-at-a-time generation", f"{gen['batched'] / gen['single']:.2f}", ">= 2", gen["batched"] / gen["single"] >= 2),
        ("ranking (news test split): full prompts / shared prefix, seconds", f"{speedup:.2f} ({statistics.median(full):.1f} s vs {statistics.median(shared):.1f} s)", "> 1", speedup > 1),
        ("real tokens, training batches (shuffled)", f"{shuffled['train']:.2f}", "", None),
        ("real tokens, training batches (group_by_length=true)", f"{grouped['train']:.2f}", "> shuffled", grouped["train"] > shuffled["train"]),
        ("real tokens, evaluation batches (length-sorted)", f"{shuffled['eval']:.2f}", ">= 0.90", shuffled["eval"] >= 0.90),
        ("peak RSS of this benchmark (MB)", f"{peak_rss_mb():.0f}", "", None),
    ]  # fmt: skip
    text = "\n".join([
        "# Language-model benchmarks", "",
        f"Made by `python -m cl.analysis.bench --lm` on {platform_line()}: `{PRESET}`, SmolLM2-135M-Instruct, "
        f"training {steps} steps of task {task} per round, {rounds} rounds; generation on "
        f"{gen['prompts']} test prompts. Ratios come from measurements taken side by side in one run.", "",
        table(rows),
    ])  # fmt: skip
    print(text)
    Path(doc).parent.mkdir(parents=True, exist_ok=True)
    Path(doc).write_text(text)


def ranking_seconds(share_prefix: bool, task: int = 0) -> float:
    """Seconds to rank the label words of one task's test split (bf16 autocast), with its common
    prompt prefix computed once per batch or with every prompt computed in full."""
    exp = experiment(PRESET)
    module, stream = exp.module.eval(), exp.stream
    module.share_prefix = share_prefix
    batches = list(stream.test_loaders(exp.cfg.eval_batch_size)[task])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        module.class_probs(batches[0], task)  # warm-up
        start = time.perf_counter()
        for b in batches:
            module.class_probs(b, task)
    return time.perf_counter() - start
