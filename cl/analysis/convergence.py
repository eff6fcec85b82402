"""``python -m cl.analysis.convergence <folders...>``: did the trained tasks converge before the epoch cap?

Reads every finished ``results.json`` below the folders (final runs or ``cl.tune`` trials) and counts,
per strategy and in all, the (run, task) pairs that trained with validation-based model selection:
how many ran every epoch the cap allowed (early stopping never fired), how many had their best
validation score at the last epoch allowed (the task may still have been learning: raise
``trainer.max_epochs``), and the mean chosen epoch. Both counts come from the report's
``selections``, so this and the report's selection table say the same of the same runs.
"""

import argparse
import statistics
from collections import defaultdict

from cl.analysis.report import load_runs, selections


def tally(runs: list[dict]) -> dict[str, dict]:
    """strategy -> {tasks, ran_cap, at_cap, mean_epoch}, plus ``all`` over every strategy."""
    found = defaultdict(list)
    for run in runs:
        if run.get("status") != "finished":
            continue
        for _, v, ran_cap, at_cap in selections(run):
            found[run["strategy"]].append((ran_cap, at_cap, v["chosen"] + 1))
    found["all"] = [t for tasks in found.values() for t in tasks]
    return {s: {"tasks": len(ts), "ran_cap": sum(t[0] for t in ts), "at_cap": sum(t[1] for t in ts),
                "mean_epoch": statistics.fmean(t[2] for t in ts) if ts else float("nan")}
            for s, ts in found.items()}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.analysis.convergence", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="run, sweep or tuning folders holding results.json files")
    counts = tally(load_runs(parser.parse_args(argv).folders))
    if not counts["all"]["tasks"]:
        raise SystemExit(
            "cl.analysis.convergence: no finished run below these folders trained with validation "
            "(stream.validation_fraction > 0); nothing to say about convergence"
        )
    print("| strategy | trained tasks | ran every epoch | best at the cap | mean chosen epoch |")
    print("|---|---|---|---|---|")
    for strategy, c in sorted(counts.items(), key=lambda item: item[0] == "all"):
        print(f"| {strategy} | {c['tasks']} | {c['ran_cap']} | {c['at_cap']} | {c['mean_epoch']:.1f} |")


if __name__ == "__main__":
    main()
