"""``python -m cl.analysis.report <folders...>``: compare the runs found under the given folders.

Reads every ``results.json`` below the folders and, per strategy, gives the mean and 95% confidence
interval of the six metrics, training time, trainable parameters and peak memory, clustered by seed
(``cl.analysis.inference``: runs of one seed share their data across task orders), the accuracy per
task order, and each strategy's paired difference to ``naive`` over the runs that share a seed and a
task order (paired runs see the same data in the same order, so the difference is far less noisy than
the two means) with Holm-adjusted p-values, and simultaneous intervals on the strategies' ranks
(from Holm-adjusted pairwise tests). A strategy that lacks some of the (seed, order) runs that
others have is marked, not averaged over fewer runs in silence.

``--out DIR`` writes the tables as Markdown (``summary.md``) and LaTeX (``table_*.tex``), every
number as ``stats.json``, and the figures as PNG and PDF: the mean accuracy matrix per strategy,
each task's accuracy along the stream, accuracy vs forgetting, accuracy vs cost.
"""

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from cl.analysis.figures import figures
from cl.analysis.inference import clustered, holm, paired, per_seed, rank_intervals, t_interval
from cl.engine.metrics import METRIC_NAMES
from cl.engine.names import order_name

METRICS = METRIC_NAMES
COSTS = ("train_s", "trainable_params", "peak_rss_mb")
SINGLE = "single_task"  # the reference runs intransigence is measured against


def load_runs(folders: list[str]) -> list[dict]:
    runs = []
    for folder in folders:
        path = Path(folder)
        if not path.exists():
            raise SystemExit(f"cl.report: {folder} does not exist")
        found = sorted(path.rglob("results.json")) if path.is_dir() else [path]
        if not found:
            raise SystemExit(f"cl.report: no results.json under {folder}; run python -m cl.run first")
        for p in found:
            try:
                run = json.loads(p.read_text())
            except ValueError:  # a damaged file is reported, not fatal to the whole report
                run = {"status": "damaged", "error": f"{p.name} is not valid JSON"}
            runs.append(run | {"path": str(p.parent)})
    return runs


def order_of(run: dict) -> str:
    return order_name(run["config"]["stream"].get("order"))


def values(run: dict) -> dict[str, float]:
    out = {m: run["metrics"][m] for m in METRICS}
    out["train_s"] = sum(run["train_seconds"])
    out["trainable_params"] = run["trainable_params"][-1] if run["trainable_params"] else None
    out["peak_rss_mb"] = run.get("peak_memory", {}).get("rss_mb")
    return out


def summarize(runs: list[dict], reference: str = "naive") -> dict:
    """Everything the tables, figures and paper use, computed once."""
    finished = [r for r in runs if r.get("status") == "finished"]
    if not finished:
        raise SystemExit("cl.report: none of the runs has finished; nothing to compare")
    by = defaultdict(dict)  # strategy -> (seed, order) -> run
    for r in finished:
        by[r["strategy"]][(r["seed"], order_of(r))] = r
    every = sorted({k for s in by.values() for k in s})
    out = {"streams": sorted({r["stream"] for r in finished}), "runs": len(finished),
           "unfinished": [f"{r['path']} ({r.get('status')}: {r.get('error') or 'no reason recorded'})"
                          for r in runs if r.get("status") != "finished"],
           "seeds": sorted({k[0] for k in every}), "orders": sorted({k[1] for k in every}),
           "reference": reference, "strategies": {}}  # fmt: skip
    vals_of = {s: {k: values(r) for k, r in keyed.items()} for s, keyed in by.items()}  # each run's, once
    for strategy, keyed in by.items():
        vals = vals_of[strategy]
        row = {name: clustered({k: v[name] for k, v in vals.items()}) for name in (*METRICS, *COSTS)}
        row["runs"] = len(keyed)
        # A reference point run in fewer task orders on purpose (multitask, single_task) is judged
        # within its own orders; a seed missing there is marked.
        row["orders"] = sorted({o for _, o in keyed})
        row["missing"] = [f"seed{s}/order{o}" for s, o in every if (s, o) not in keyed and o in row["orders"]]
        if SINGLE in by:  # Chaudhry et al. (2018): what the stream costs learning each task, vs alone
            alone = single_scores(by[SINGLE])
            row["intransigence"] = clustered({k: intransigence(r, alone[k[0]]) for k, r in keyed.items()
                                              if k[0] in alone})  # fmt: skip
        if reference in by and strategy != reference:
            ref = vals_of[reference]
            tests = {m: paired({k: v[m] for k, v in vals.items()}, {k: v[m] for k, v in ref.items()}) for m in METRICS}
            row["paired"] = {m: (t["mean"], t["half"], t["n"]) for m, t in tests.items()}
            row["paired_p"] = {m: t["p"] for m, t in tests.items()}
        row["by_order_ci"] = {o: t_interval([v["acc"] for (s, oo), v in vals.items() if oo == o])
                              for o in out["orders"]}  # fmt: skip
        row["by_order"] = {o: ci[0] for o, ci in row["by_order_ci"].items()}
        row["matrices"] = {o: mean_matrix([r for (s, oo), r in keyed.items() if oo == o]) for o in out["orders"]}
        row["matrix_half"] = {o: matrix_half([r for (s, oo), r in keyed.items() if oo == o]) for o in out["orders"]}
        if any(r.get("validation") for r in keyed.values()):
            row["selection"] = selection_summary(list(keyed.values()))
        row["task_names"] = {o: next(r["task_names"] for (s, oo), r in keyed.items() if oo == o)
                             for o in out["orders"] if any(oo == o for _, oo in keyed)}  # fmt: skip
        out["strategies"][strategy] = row
    # One family of tests: every strategy against the reference on every metric, Holm-adjusted.
    adjusted = holm({(s, m): p for s, row in out["strategies"].items() for m, p in row.get("paired_p", {}).items()})
    for (s, m), p in adjusted.items():
        out["strategies"][s].setdefault("paired_holm", {})[m] = p
    out["tests"] = len(adjusted)
    out["separated"] = sorted(f"{s} {m}" for (s, m), p in adjusted.items() if p < 0.05)
    # Ranks compare like with like: seed means over every task order, so only strategies run in all.
    full = [s for s, row in out["strategies"].items() if row["orders"] == out["orders"]]
    out["rank_intervals"] = rank_intervals({s: per_seed({k: v["acc"] for k, v in vals_of[s].items()}) for s in full})
    out["rank_by_order"] = {o: sorted((s for s, row in out["strategies"].items() if o in row["orders"]),
                                      key=lambda s: -nan_low(out["strategies"][s]["by_order"][o]))
                            for o in out["orders"]}  # fmt: skip
    return out


def selections(run: dict) -> list[tuple[str, dict, bool, bool]]:
    """(task name, its validation record, ran every epoch the cap allowed, best validation at the
    last of them) for each task the run trained with model selection (a task that trained nothing
    has no record)."""
    cap = run["config"].get("trainer", {}).get("max_epochs")
    out = []
    for name, v in zip(run["task_names"], run.get("validation") or []):
        if v and v.get("curve") and v.get("chosen") is not None:
            ran_cap = v["epochs"] == cap
            out.append((name, v, ran_cap, ran_cap and v["chosen"] == len(v["curve"]) - 1))
    return out


def selection_summary(runs: list[dict]) -> dict[str, dict]:
    """Per task (by name): the mean validation curve over the runs (each point over the runs that
    validated that often: early stopping ends some sooner), the mean chosen validation (1-based),
    and the share of runs whose best validation was the last one the epoch cap allowed (a task that
    may not have converged)."""
    curves, chosen, capped = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in runs:
        for name, v, _, at_cap in selections(r):
            curves[name].append(v["curve"])
            chosen[name].append(v["chosen"] + 1)
            capped[name].append(at_cap)
    out = {}
    for name, cs in curves.items():
        points = [[c[e] for c in cs if len(c) > e] for e in range(max(map(len, cs)))]
        out[name] = {"curve": [statistics.fmean(p) for p in points], "runs_at": [len(p) for p in points],
                     "chosen": statistics.fmean(chosen[name]), "at_cap": statistics.fmean(capped[name])}  # fmt: skip
    return out


def single_scores(runs: dict) -> dict[int, dict[str, float]]:
    """seed -> task name -> a_k*, the score of task k trained alone from the pretrained model (the
    diagonal of a ``single_task`` run), averaged over the task orders it ran in: a task trained alone
    does not depend on the order, so one order's single_task runs serve every order."""
    scores = defaultdict(lambda: defaultdict(list))
    for (seed, _), run in runs.items():
        for k, name in enumerate(run["task_names"]):
            scores[seed][name].append(run["accuracy_matrix"][k][k])
    return {seed: {name: statistics.fmean(v) for name, v in names.items()} for seed, names in scores.items()}


def intransigence(run: dict, alone: dict[str, float]) -> float:
    """Mean over tasks of a_k* - R[k][k]: the single-task score of the same seed (``single_scores``)
    minus the stream's score right after training on k. Positive: earlier tasks (or the strategy)
    made task k harder to learn; its negative is forward transfer measured against single-task training."""
    names = run["task_names"]
    return statistics.fmean(alone[name] - run["accuracy_matrix"][k][k] for k, name in enumerate(names))


def nan_low(x: float) -> float:
    return -math.inf if x is None or math.isnan(x) else x


def mean_matrix(runs: list[dict]) -> list[list[float]] | None:
    if not runs:
        return None
    t = len(runs[0]["accuracy_matrix"])
    return [[statistics.fmean(r["accuracy_matrix"][i][j] for r in runs) for j in range(t)] for i in range(t)]


def matrix_half(runs: list[dict]) -> list[list[float]] | None:
    """Each cell's 95% interval half-width over the runs (seeds) of one order: the bands of a figure."""
    if len(runs) < 2:
        return None
    t = len(runs[0]["accuracy_matrix"])
    return [[t_interval([r["accuracy_matrix"][i][j] for r in runs])[1] for j in range(t)] for i in range(t)]


def fmt(x: tuple | float, digits: int = 3, latex: bool = False) -> str:
    """``0.540 ± 0.021`` (or ``0.540`` for one run); ``n/a`` when undefined."""
    mean, half = (x[0], x[1]) if isinstance(x, tuple | list) else (x, math.nan)
    half = math.nan if half is None else half
    if mean is None or math.isnan(mean):
        return "n/a"
    big = abs(mean) >= 1000
    mean = round(mean, 0 if big else digits) + 0.0  # a tiny negative mean prints as 0.000, not -0.000
    text = f"{mean:,.0f}" if big else f"{mean:.{digits}f}"
    if not math.isnan(half):
        pm = r" $\pm$ " if latex else " ± "
        text += pm + (f"{half:,.0f}" if big else f"{half:.{digits}f}")
    return text.replace(",", "{,}") if latex else text


def order_strategies(stats: dict) -> list[str]:
    return sorted(stats["strategies"], key=lambda s: -nan_low(stats["strategies"][s]["acc"][0]))


def tables(stats: dict, latex: bool = False) -> dict[str, str]:
    """The main table, the paired differences and accuracy by task order, as Markdown or LaTeX."""
    names = order_strategies(stats)
    rows = {}
    extra = ["intransigence"] if any("intransigence" in r for r in stats["strategies"].values()) else []
    head = ["strategy", "seeds (runs)", *METRICS, *extra]
    body, costs = [], []
    for s in names:
        row, name = stats["strategies"][s], s.replace("_", r"\_") if latex else s
        mark = "*" if row["missing"] else ""
        cells = [*(fmt(row[m], latex=latex) for m in METRICS), *(fmt(row.get(m, math.nan), latex=latex) for m in extra)]
        body.append([name, f"{row['acc'][2]} ({row['runs']}){mark}", *cells])
        # The architecture fixes the trainable parameters: an interval of 0 would only be noise in the table.
        params = row["trainable_params"]
        params = params[0] if isinstance(params, tuple | list) and params[1] == 0 else params
        costs.append([name, fmt(row["train_s"], 0, latex), fmt(params, 0, latex), fmt(row["peak_rss_mb"], 0, latex)])
    rows["main"] = (head, body)
    # Costs apart from the metrics, so that neither table has to shrink to fit a page.
    rows["costs"] = (["strategy", "train s", "trainable params", "peak RSS MB"], costs)
    ref = stats["reference"]
    head = ["strategy", "seeds", *(f"Δ {m}" if not latex else rf"$\Delta$ {m}" for m in METRICS)]
    body = []
    for s in names:
        paired = stats["strategies"][s].get("paired")
        if paired:
            holm_p = stats["strategies"][s].get("paired_holm", {})
            mark = r"$^\dagger$" if latex else " †"
            cells = [fmt(paired[m], latex=latex) + (mark if holm_p.get(m, 1.0) < 0.05 else "") for m in METRICS]
            body.append([s.replace("_", r"\_") if latex else s, str(paired["acc"][2]), *cells])
    rows["paired"] = (head, body)
    head = ["strategy", *(f"order {o}" for o in stats["orders"])]
    body = []
    for s in names:
        ranking = stats["rank_by_order"]
        cells = [f"{fmt(stats['strategies'][s]['by_order'][o])} (#{ranking[o].index(s) + 1})" if s in ranking[o]
                 else "not run" for o in stats["orders"]]  # fmt: skip
        body.append([s.replace("_", r"\_") if latex else s, *(c.replace("#", r"\#") if latex else c for c in cells)])
    rows["orders"] = (head, body)
    head = ["strategy", "acc", "rank", "95% interval of rank"]
    body = []
    for s in names:
        r = stats["rank_intervals"].get(s)
        if r:
            acc = fmt(stats["strategies"][s]["acc"], latex=latex)
            if r["seeds"] < r["of"]:  # ranked on the seeds every strategy has: show that mean, and say so
                acc = f"{fmt(r['acc'])} ({r['seeds']} of its {r['of']} seeds)"
            body.append([s.replace("_", r"\_") if latex else s, acc, str(r["rank"]), f"{r['low']}-{r['high']}"])
    rows["ranks"] = (head, body)
    tasks = list(dict.fromkeys(t for s in names for t in stats["strategies"][s].get("selection", {})))
    body = []
    for s in names:
        sel = stats["strategies"][s].get("selection")
        if sel:
            cells = [f"{sel[t]['chosen']:.1f} ({sel[t]['at_cap']:.0%})" if t in sel else "" for t in tasks]
            cells = [c.replace("%", r"\%") for c in cells] if latex else cells
            body.append([s.replace("_", r"\_") if latex else s, *cells])
    rows["selection"] = (["strategy", *tasks], body)
    render = latex_table if latex else markdown_table
    out = {k: render(h, b) for k, (h, b) in rows.items()}
    if not latex:
        if stats["unfinished"]:
            out["main"] += "\nruns that did not finish (not averaged in):\n" + "".join(
                f"- {u}\n" for u in stats["unfinished"])  # fmt: skip
        fewer = {s: r["orders"] for s, r in stats["strategies"].items() if r["orders"] != stats["orders"]}
        if fewer:
            out["main"] += "\nrun in fewer task orders, averaged over those only: " + "; ".join(
                f"{s} ({', '.join(o)})" for s, o in fewer.items()) + "\n"  # fmt: skip
        missing = {s: r["missing"] for s, r in stats["strategies"].items() if r["missing"]}
        if missing:
            out["main"] += "\n*missing runs (not averaged in): " + "; ".join(
                f"{s}: {', '.join(m)}" for s, m in missing.items()) + "\n"  # fmt: skip
        out["paired"] = (
            f"Paired differences to `{ref}` (same seed and task order, averaged per seed), mean ± 95% CI over "
            f"seeds; † marks a difference whose Holm-adjusted p-value (over all {stats['tests']} tests) is "
            "below 0.05.\n\n" + out["paired"] + "\n" + statement(stats) + "\n"
        )
        out["selection"] = (
            "Model selection: the mean chosen epoch of each task (by validation accuracy), and in brackets the "
            "share of runs whose best epoch was the last the cap allowed (not shown to have converged).\n\n"
            + out["selection"]
        )
        out["ranks"] = (
            "Ranks by final accuracy, with simultaneous 95% intervals: every pair of strategies compared "
            "by a paired t-test over seeds, Holm-adjusted together; a rank spans the places not excluded "
            "by a separated pair.\n\n" + out["ranks"]
        )
    return out


def statement(stats: dict) -> str:
    """In words: which paired differences to the reference are separated from seed noise, which not."""
    tested = [(s, m) for s, row in stats["strategies"].items() for m in row.get("paired_holm", {})]
    if not tested:
        return "No paired test could be made (a paired test needs two seeds or more)."
    apart = stats["separated"]
    text = f"Separated from noise after Holm's adjustment ({len(apart)} of {len(tested)} tests): "
    text += ", ".join(apart) if apart else "none"
    return text + ". Every other difference to the reference is within seed noise at this number of seeds."


def markdown_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in body)]) + "\n"


def latex_table(head: list[str], body: list[list[str]]) -> str:
    cols = "l" + "r" * (len(head) - 1)
    head = [h.replace("_", r"\_").replace("%", r"\%") for h in head]
    lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule", " & ".join(head) + r" \\",
             r"\midrule", *(" & ".join(r) + r" \\" for r in body), r"\bottomrule", r"\end{tabular}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def label(run: dict) -> str:
    """The strategy's name, with the PEFT method when it is not LoRA and the adapter's mode when it is
    shared (``lora (ia3)``, ``lora (shared)``: SeqLoRA)."""
    lora = (run["config"].get("strategy") or {}).get("lora") or {}
    notes = [n for n in (lora.get("method", "lora"), lora.get("mode", "isolation")) if n not in ("lora", "isolation")]
    return f"{run['strategy']} ({', '.join(notes)})" if notes else run["strategy"]


def runs_table(runs: list[dict]) -> str:
    """One row per run (the table of a single-seed comparison), with the general-ability probes'
    drops (``general_drop/<probe>``) when the runs have probes."""
    drops = sorted({m for r in runs for m in r["metrics"] if m.startswith("general_drop/")})
    head = ["strategy", "seed", "acc", "avg_incremental_acc", "bwt", "forgetting", "learning_acc", *drops,
            "trainable params", "train + eval s", "peak RSS MB", "status"]  # fmt: skip
    body = []
    for r in sorted(runs, key=lambda r: (r["stream"], -(r["metrics"]["acc"] or 0), r["seed"])):
        m = r["metrics"]
        cells = [label(r), str(r["seed"]), *(fmt(m[c]) for c in head[2:7]), *(fmt(m.get(d)) for d in drops)]
        wall = r["initial_eval_seconds"] + sum(r["train_seconds"]) + sum(r["eval_seconds"])
        cells += [f"{r['trainable_params'][-1]:,}" if r["trainable_params"] else "n/a", f"{wall:.0f}"]
        cells.append(fmt(r.get("peak_memory", {}).get("rss_mb"), 0))
        cells.append(r["status"] if r["status"] == "finished" else f"{r['status']} ({r['completed_tasks']} tasks)")
        body.append(cells)
    return markdown_table(head, body)


def write(stats: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    md, tex = tables(stats), tables(stats, latex=True)
    summary = [f"# Comparison: {', '.join(stats['streams'])}", "",
               f"{stats['runs']} finished runs; seeds {stats['seeds']}; task orders {stats['orders']}.", "",
               "Mean ± 95% confidence interval over seeds (each seed's runs averaged over task orders first).",
               "", md["main"], "Costs: training seconds, trainable parameters and peak resident memory, mean ± 95% CI "
               "over seeds.", "", md["costs"], md["paired"],
               "Final accuracy by task order (rank among strategies).", "", md["orders"], md["ranks"],
               md["selection"] if any(r.get("selection") for r in stats["strategies"].values()) else ""]  # fmt: skip
    (out / "summary.md").write_text("\n".join(summary))
    for name, text in tex.items():
        (out / f"table_{name}.tex").write_text(text)
    (out / "stats.json").write_text(json.dumps(stats, indent=1, default=str))
    figures(stats, order_strategies(stats), out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.analysis.report", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="run or sweep folders holding results.json files")
    parser.add_argument("--out", help="write Markdown and LaTeX tables, stats.json and figures here")
    parser.add_argument("--markdown", help="write the summary (or, with --runs, the per-run table) to this file")
    parser.add_argument("--runs", action="store_true", help="one row per run instead of per strategy")
    parser.add_argument("--reference", default="naive", help="strategy the paired differences are taken to")
    args = parser.parse_args(argv)
    runs = load_runs(args.folders)
    if args.runs:
        text = runs_table(runs)
    else:
        stats = summarize(runs, args.reference)
        md = tables(stats)
        text = md["main"] + "\n" + md["costs"] + "\n" + md["paired"] + "\n" + md["orders"] + "\n" + md["ranks"]
        if args.out:
            write(stats, Path(args.out))
    sys.stdout.write(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
