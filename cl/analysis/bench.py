"""``python -m cl.analysis.bench``: what the framework and each strategy cost, as ratios measured in one run.

Everything runs on the default model and stream with the same batch size and optimizer, and every
timing is compared with a reference measured side by side in the same process (this machine is
noisy; absolute seconds are only context). Prints one table (value, target, pass/fail) and writes
it to ``docs/benchmarks.md``.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import get_scheduler

from cl.analysis import bench_imports, bench_lm, bench_memory, bench_packed, bench_peers
from cl.analysis.timing import QUIET, StepClock, experiment, platform_line, table
from cl.engine.loop import ContinualLoop, Experiment
from cl.engine.results import peak_rss_mb


def count_tokens(network) -> list[int]:
    """Count the (padded) tokens the encoder computes while training; ``pop()`` reads and stops."""
    total, features = [0], network.features

    def counted(input_ids, attention_mask):
        if torch.is_grad_enabled():  # training steps, not the teacher's or evaluation's passes
            total[0] += input_ids.numel()
        return features(input_ids, attention_mask)

    network.features = counted
    return total


def plain_task(exp: Experiment) -> tuple[float, list[float]]:
    """The first task's training written by hand: no Lightning, the module's network, the same batches,
    AdamW, clipping and schedule. Its seconds from the optimizer's creation to the last step, and
    the seconds of each step (between successive batch starts)."""
    net, cfg = exp.module.network.train(), exp.cfg
    loader = exp.stream.train_loader(exp.stream.tasks[0].train, cfg.batch_size, seed=cfg.seed * 1000)
    start = time.perf_counter()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay, fused=cfg.optimizer.fused
    )  # the framework's optimizer, the same work
    steps = len(loader) * cfg.trainer.max_epochs
    sched = get_scheduler(cfg.scheduler.name, opt, int(cfg.scheduler.warmup_ratio * steps), steps)
    starts = []
    for _ in range(cfg.trainer.max_epochs):
        for batch in loader:
            starts.append(time.perf_counter())
            logits = net.head_logits(net.features(batch["input_ids"], batch["attention_mask"]), 0)
            loss = F.cross_entropy(logits, batch["labels"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.trainer.gradient_clip_val)
            opt.step()
            sched.step()
            opt.zero_grad()
    end = time.perf_counter()
    return end - start, [b - a for a, b in zip(starts, [*starts[1:], end])]


def lightning_task(exp: Experiment, out: str) -> tuple[float, list[float]]:
    """The same task trained by the framework: seconds of ``train_task`` (Trainer, hooks, logging,
    the finite-loss check) and of each step."""
    clock = StepClock()
    loop = ContinualLoop(exp, out)
    loop.callbacks = [*loop.callbacks, clock]
    start = time.perf_counter()
    loop.train_task(0)
    return time.perf_counter() - start, clock.steps()


def overhead(rounds: int, out: str) -> dict:
    """The first task trained by both paths in rounds, each path going first in every other round;
    each ratio is the median of the rounds' paired ratios, so a slow drift of the machine cancels
    out instead of landing on one side."""
    torch.use_deterministic_algorithms(True, warn_only=True)  # what the Trainer sets, for both sides
    task, step = [], []
    for r in range(rounds):
        # Whatever going second costs or saves (the allocator's and caches' state the first path
        # left) falls on both paths alike: with the plain loop always first, rounds spread 0.87-1.10.
        if r % 2:
            ours_s, ours_steps = lightning_task(experiment(), out)
            plain_s, plain_steps = plain_task(experiment())
        else:
            plain_s, plain_steps = plain_task(experiment())
            ours_s, ours_steps = lightning_task(experiment(), out)
        task.append((ours_s, plain_s))
        step.append((statistics.median(ours_steps[2:]), statistics.median(plain_steps[2:])))  # first: one-off
    found = {}
    for name, pairs in (("task", task), ("step", step)):
        ratios = [a / b for a, b in pairs]
        found[name] = {"framework_s": statistics.median(a for a, _ in pairs), "plain_s": statistics.median(b for _, b in pairs),
                       "ratio": statistics.median(ratios), "rounds": [round(r, 3) for r in ratios]}  # fmt: skip
    return found


def optimizer_step(exp: Experiment, rounds: int = 3, steps: int = 5) -> dict:
    """AdamW's step over the network's parameters: PyTorch's fused kernel (the default here) against
    its per-tensor loop (PyTorch's default on a CPU), alternating, on the same gradients."""
    params = [p for p in exp.module.network.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    seconds = {True: [], False: []}
    for _ in range(rounds):
        for fused in (True, False):
            opt = torch.optim.AdamW(params, lr=1e-9, fused=fused)
            opt.step()  # state allocated outside the clock
            start = time.perf_counter()
            for _ in range(steps):
                opt.step()
            seconds[fused].append((time.perf_counter() - start) / steps)
    return {"fused_s": statistics.median(seconds[True]), "loop_s": statistics.median(seconds[False])}


def strategy_cost(strategy: str, out: str) -> dict:
    """One epoch-averaged task (task 1, after a short task 0) with a strategy (its name, then any
    overrides: ``"naive model.length_chunks=2"``), in this process."""
    name, *extra = strategy.split()
    exp = experiment(f"strategy={name}", *extra)
    loop = ContinualLoop(exp, out)
    loop.settings.trainer |= {"max_steps": 4}
    loop.train_task(0)  # gives replay a memory and distill a teacher
    del loop.settings.trainer["max_steps"]
    clock = StepClock()
    loop.callbacks = [*loop.callbacks, clock]
    tokens = count_tokens(exp.module.network)
    seconds = loop.train_task(1)
    trained_tokens = tokens.pop()
    epochs = exp.cfg.trainer.max_epochs
    start = time.perf_counter()
    evaluated = sum(len(t.test) for t in exp.stream.tasks)
    loop.evaluate()
    eval_s = time.perf_counter() - start
    return {
        "strategy": strategy,
        "epoch_s": seconds / epochs,
        "tokens_per_epoch": trained_tokens / epochs,
        "examples_per_epoch": exp.results.train_examples[-1],
        "trained_examples_per_s": (len(clock.steps())) * exp.cfg.batch_size / sum(clock.steps()),
        "eval_examples_per_s": evaluated / eval_s,
        "trainable_params": sum(p.numel() for p in exp.module.parameters() if p.requires_grad),
        "peak_rss_mb": peak_rss_mb(),
        "report": {k: v for cb in exp.callbacks for k, v in cb.report().items()},
    }


def padding(exp: Experiment, fixed: int) -> dict:
    """Share of real tokens in batches: padded to ``fixed``, to each batch's longest (training
    order), and to each batch's longest after sorting by length (evaluation order)."""
    bs, ebs = exp.cfg.batch_size, exp.cfg.eval_batch_size
    real = padded_fixed = padded_train = padded_eval = 0
    for t, task in enumerate(exp.stream.tasks):
        for lengths, size, sort in ((task.train["length"], bs, False), (task.test["length"], ebs, True)):
            order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(t)).tolist()
            ls = sorted(lengths, reverse=True) if sort else [lengths[i] for i in order]
            batches = [ls[i : i + size] for i in range(0, len(ls), size)]
            dynamic = sum(max(b) * len(b) for b in batches)
            real += sum(ls)
            padded_fixed += fixed * len(ls)
            if sort:
                padded_eval += dynamic
            else:
                padded_train += dynamic
    train_real = sum(sum(t.train["length"]) for t in exp.stream.tasks)
    eval_real = real - train_real
    return {
        "fixed": real / padded_fixed,
        "train_dynamic": train_real / padded_train,
        "eval_sorted": eval_real / padded_eval,
    }


def in_subprocess(strategy: str, out: str) -> dict:
    """Each strategy in its own process, so that its peak memory is its own."""
    cmd = [sys.executable, "-m", "cl.analysis.bench", "--one", strategy, "--out", out]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark of {strategy} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired_rounds(strategy: str, rounds: int, out: str) -> list[float]:
    """``strategy`` epoch / naive epoch, each pair measured back to back."""
    ratios = []
    for _ in range(rounds):
        naive = in_subprocess("naive", out)["epoch_s"]
        ratios.append(in_subprocess(strategy, out)["epoch_s"] / naive)
    return ratios


def default_run(out: str) -> dict:
    """The default job, end to end, for its wall-time split."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "cl.run", *QUIET, f"hydra.run.dir={out}"]
    subprocess.run(cmd, check=True, capture_output=True)
    res = json.loads((Path(out) / "results.json").read_text())
    wall = time.perf_counter() - start
    evals = res["initial_eval_seconds"] + sum(res["eval_seconds"])
    setup = res["setup_seconds"]
    return {"wall": wall, "train": sum(res["train_seconds"]), "eval": evals, **setup,
            "other": wall - sum(res["train_seconds"]) - evals - sum(setup.values())}  # fmt: skip


CHUNKED = {"naive": "naive model.length_chunks=2", "replay": "replay model.length_chunks=2"}
STRATEGIES = ["naive", "freeze", "lora", "replay", "distill", "[lora,distill]", "mc_dropout", *CHUNKED.values()]
TIGHT = ["distill", "replay", *CHUNKED.values()]  # targets (or gains) close to the machine's noise


def rows(over: dict, opt: dict, costs: dict, pad: dict, run: dict, epochs: int) -> list[tuple]:
    naive = costs["naive"]
    rel = {
        s: statistics.median(c["rounds"]) if "rounds" in c else c["epoch_s"] / naive["epoch_s"]
        for s, c in costs.items()
    }
    rounds = {s: [round(r, 3) for r in c.get("rounds", [])] for s, c in costs.items()}
    teacher_share = costs["distill"]["report"]["teacher_seconds"] / (naive["epoch_s"] * epochs)
    # Replay's fair cost is what it adds: extra tokens computed, not only extra examples.
    replay_tokens = costs["replay"]["tokens_per_epoch"] / naive["tokens_per_epoch"]
    eval_speedup = naive["eval_examples_per_s"] / naive["trained_examples_per_s"]
    rss = {s: c["peak_rss_mb"] for s, c in costs.items()}
    memory = costs["replay"]["report"]
    out = [
        ("framework task training / plain PyTorch loop", f"{over['task']['ratio']:.3f} ({over['task']['framework_s']:.1f} s vs {over['task']['plain_s']:.1f} s; rounds {over['task']['rounds']})", "<= 1.02", over["task"]["ratio"] <= 1.02),
        ("framework step / plain PyTorch step", f"{over['step']['ratio']:.3f} ({over['step']['framework_s']:.3f} s vs {over['step']['plain_s']:.3f} s; rounds {over['step']['rounds']})", "<= 1.02", over["step"]["ratio"] <= 1.02),
        ("AdamW step: fused (the default) / per-tensor loop", f"{opt['fused_s'] / opt['loop_s']:.2f} ({opt['fused_s'] * 1000:.0f} ms vs {opt['loop_s'] * 1000:.0f} ms)", "", None),
        ("distill epoch / naive epoch", f"{rel['distill']:.3f} (median of paired rounds {rounds['distill']})", "<= 1.15", rel["distill"] <= 1.15),
        ("distill teacher pass / naive task training", f"{teacher_share:.3f}", "", None),
        ("replay epoch / naive epoch", f"{rel['replay']:.3f} (median of paired rounds {rounds['replay']})", "", None),
        ("replay tokens computed / naive tokens", f"{replay_tokens:.3f}", "", None),
        ("replay time per token / naive time per token", f"{rel['replay'] / replay_tokens:.3f}", "<= 1.05", rel["replay"] / replay_tokens <= 1.05),
        ("naive epoch, length_chunks=2 / naive epoch", f"{rel[CHUNKED['naive']]:.3f} (median of paired rounds {rounds[CHUNKED['naive']]}; tokens {costs[CHUNKED['naive']]['tokens_per_epoch'] / naive['tokens_per_epoch']:.3f})", "< 1.00", rel[CHUNKED["naive"]] < 1.0),
        ("replay epoch, length_chunks=2 / replay epoch", f"{rel[CHUNKED['replay']] / rel['replay']:.3f} (tokens {costs[CHUNKED['replay']]['tokens_per_epoch'] / costs['replay']['tokens_per_epoch']:.3f})", "< 1.00", rel[CHUNKED["replay"]] < rel["replay"]),
        ("lora epoch / naive epoch", f"{rel['lora']:.3f}", "<= 0.85", rel["lora"] <= 0.85),
        ("freeze epoch / naive epoch", f"{rel['freeze']:.3f}", "< 1.00", rel["freeze"] < 1.0),
        ("mc_dropout epoch / naive epoch", f"{rel['mc_dropout']:.3f}", "", None),
        ("real tokens, fixed padding to 64", f"{pad['fixed']:.2f}", "", None),
        ("real tokens, dynamic padding (training)", f"{pad['train_dynamic']:.2f}", "> fixed", pad["train_dynamic"] > pad["fixed"]),
        ("real tokens, length-sorted (evaluation)", f"{pad['eval_sorted']:.2f}", ">= 0.90", pad["eval_sorted"] >= 0.90),
        ("evaluation share of the default run", f"{run['eval'] / run['wall']:.2f}", "< 0.40", run["eval"] / run["wall"] < 0.40),
        ("eval / train throughput", f"{eval_speedup:.1f} ({naive['eval_examples_per_s']:.0f} vs {naive['trained_examples_per_s']:.0f} examples/s)", ">= 3", eval_speedup >= 3),
        ("distill peak RSS - naive peak RSS (MB)", f"{rss['distill'] - rss['naive']:.0f}", "< 45 (half a model)", rss["distill"] - rss["naive"] < 45),
        ("lora+distill peak RSS - lora peak RSS (MB)", f"{rss['[lora,distill]'] - rss['lora']:.0f}", "< 45 (no model copy)", rss["[lora,distill]"] - rss["lora"] < 45),
        ("replay memory (examples / bytes)", f"{memory['memory_examples']} / {memory['memory_bytes']:,}", "token ids only", None),
    ]  # fmt: skip
    out += [(f"peak RSS, {s} (MB)", f"{v:.0f}", "", None) for s, v in rss.items()]
    out += [(f"trainable parameters, {s}", f"{c['trainable_params']:,}", "", None) for s, c in costs.items()]
    out += [(f"default run: {k} (s)", f"{v:.1f}", "", None) for k, v in run.items()]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.analysis.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating plain/framework rounds (one task each)")
    parser.add_argument("--pairs", type=int, default=2, help="extra naive/strategy pairs for tight targets")
    parser.add_argument("--out", default="outputs/bench", help="scratch folder")
    parser.add_argument("--doc", default="docs/benchmarks.md", help="where the table is written")
    parser.add_argument("--lm", action="store_true", help="language-model throughput instead (docs/benchmarks_lm.md)")
    parser.add_argument(
        "--peers", action="store_true", help="whole runs against a plain loop and Avalanche (docs/benchmarks_peers.md)"
    )
    parser.add_argument("--peer-rounds", type=int, default=2, help="rounds of whole runs (--peers)")
    parser.add_argument("--avalanche-python", help="the python of Avalanche's virtual environment (--peers)")
    parser.add_argument(
        "--packed",
        type=int,
        metavar="K",
        help="K LoRA runs trained together against one by one (docs/benchmarks_packed.md)",
    )
    parser.add_argument(
        "--imports", action="store_true", help="memory held by each layer of imports (docs/benchmarks_imports.md)"
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="peak RSS by phase, ours against the plain loop (docs/benchmarks_memory.md)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one strategy, JSON on stdout
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(strategy_cost(args.one, args.out)))
        return
    # each mode writes its own file unless --doc names one
    doc = lambda mode: args.doc if args.doc != parser.get_default("doc") else f"docs/benchmarks_{mode}.md"  # noqa: E731
    if args.peers:
        return bench_peers.main(args.out, doc("peers"), args.peer_rounds, args.avalanche_python)
    if args.imports:
        return bench_imports.main(doc("imports"))
    if args.memory:
        return bench_memory.main(args.out, doc("memory"))
    if args.packed:
        return bench_packed.main(doc("packed"), args.packed)
    if args.lm:
        return bench_lm.main(args.out, doc("lm"))

    over = overhead(args.rounds, args.out)
    opt = optimizer_step(experiment())
    costs = {s: in_subprocess(s, args.out) for s in STRATEGIES}
    # naive is the reference of every ratio: measured first and again last, averaged, so a slow
    # drift of the machine during the strategies does not fall on the reference alone.
    again = in_subprocess("naive", args.out)
    costs["naive"]["epoch_s"] = (costs["naive"]["epoch_s"] + again["epoch_s"]) / 2
    for s in TIGHT:  # targets within the machine's noise: the median of paired rounds decides
        costs[s]["rounds"] = [costs[s]["epoch_s"] / costs["naive"]["epoch_s"]]
        costs[s]["rounds"] += paired_rounds(s, args.pairs, args.out)
    pad = padding(experiment(), fixed=64)
    run = default_run(f"{args.out}/default")
    doc = "\n".join([
        "# Benchmarks", "",
        f"Made by `python -m cl.analysis.bench` on {platform_line()}.",
        "Ratios come from measurements taken side by side in one run; seconds are context only.", "",
        table(rows(over, opt, costs, pad, run, experiment().cfg.trainer.max_epochs)),
    ])  # fmt: skip
    sys.stdout.write(doc)
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text(doc)


if __name__ == "__main__":
    main()
