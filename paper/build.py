"""Render paper/paper.tex from paper/paper.tex.in, the study's reports and its committed files.

Every number in the paper comes from here: ``{{...}}`` placeholders are filled from the reports of
``cl.analysis.report`` (``paper/generated/<report>/stats.json``, reports ``task`` and ``class``), the
tuning choices and run files of the study (``STUDY``, ``results/converged``) and the language-model
runs in ``results/text4_lm``.

    {{ci:task:replay:acc}}       mean ± 95% CI over seeds      {{mean:task:replay:acc}}  mean only
    {{diff:task:replay:acc}}     paired difference to naive, mean ± 95% CI over seeds
    {{n:task:replay}}            seeds    {{runs:task}} {{seeds:task}} {{orders:task}} {{orderlist:task}}
    {{rank:task:<order>}}        strategies by final accuracy under that order
    {{separated:task}}           the report's statement of what Holm's adjustment separates from noise
    {{atcap:task}}               share of (run, task) pairs whose best epoch was the last allowed
    {{table:task:main}}          a generated table      {{figure:task:heatmaps}}  a generated figure
    {{size:news:train}}          examples per class in the study stream (train, test)
    {{tuning}}                   the tuning table      {{trials}}  trials run
    {{edges}}                    chosen values at the edge of their search space
    {{alt:single_task:learning_acc}}  the trial another validation metric would have chosen
    {{trialtable:naive}}         a strategy's tuning trials    {{chosen:naive:optimizer.lr}}  a chosen value
    {{cost:hours}} {{cost:runs}} the study's measured compute (CPU-thread hours) and run count
    {{versions}}                 the library versions its runs and trials recorded
    {{lm:table}}                 the one-seed language-model comparison   {{lm:naive:forgetting}}
    {{routing:routing_acc}}      routed LoRA's routing (or oracle_acc) accuracy after the last task, ± CI over seeds
    {{conv:table}} {{conv:cap}} {{conv:atcap}} {{conv:hours}} {{conv:ratio}} {{conv:projected}}
                                 {{conv:cap:base}} {{conv:atcap:base}} {{conv:chosen:naive:optimizer.lr}}
                                 {{conv:patience}} {{conv:patience:base}} {{conv:cost:base}} (hours)
                                 {{conv:moved}} of {{conv:tunings}} tunings chose otherwise; {{conv:unmoved}}
                                 {{conv:diff:naive:acc}} {{conv:at:naive}} {{conv:n:naive}} (seeds)
                                 {{conv:class:naive:acc}} (the baseline's class-incremental runs, ± CI over seeds)
                                 the convergence check (scripts/convergence.sh): the study's runs rerun with
                                 a higher epoch cap (CONVERGENCE), against the same seeds and orders of the
                                 study (or of BASELINE, another study)
"""

import functools
import json
import math
import os
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from cl.analysis.budget import thread_seconds  # noqa: E402
from cl.analysis.report import fmt, label, latex_table, load_runs, order_of, selection_summary, tables, values  # noqa: E402

# The paper reports the converged study (STUDY); its section "What the cap changed" pairs that study's
# runs (CONVERGENCE) with the same seeds and orders of the earlier 3-epoch study (BASELINE; empty: the
# reported study itself). The template is written for these defaults; the paper on the 3-epoch study,
# against scripts/convergence.sh's reruns, is at commit d4dd04b.
STUDY = ROOT / os.environ.get("STUDY", "results/converged")
LM = ROOT / "results" / "text4_lm"
CONVERGENCE = ROOT / os.environ.get("CONVERGENCE", str(STUDY / "task"))
BASELINE = os.environ.get("BASELINE", "results/study")


def baseline() -> Path:
    return ROOT / BASELINE if BASELINE else STUDY


def tex(name: str) -> str:
    return name.replace("_", r"\_")


def sizes() -> dict:
    return yaml.safe_load((ROOT / "configs" / "stream" / "text4_study.yaml").read_text())["tasks"]


def short(overrides: list[str]) -> str:
    """``lr=0.0002, ratio=2.0``: overrides named by the last part of their key."""
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={v}" for key, v in (o.split("=", 1) for o in overrides))


def choice(strategy: str, root: Path | None = None) -> dict:
    """``strategy``'s tuning record (cl.tune's choice.yaml) in the study (or ``root``): chosen
    overrides and every candidate."""
    return yaml.safe_load(((root or STUDY) / "tuning" / strategy / "choice.yaml").read_text())


def tuning_table() -> str:
    """One row per strategy: trials run, the chosen settings and their validation accuracy."""
    body = []
    for path in sorted(STUDY.glob("tuning/*/choice.yaml")):
        c = choice(path.parent.name)
        best = c["candidates"][0]
        worst = c["candidates"][-1]
        body.append([tex(path.parent.name), str(len(c["candidates"])), tex(short(c["chosen"]) or "(none)"),
                     fmt(best["acc"]), fmt(worst["acc"])])  # fmt: skip
    return latex_table(["strategy", "trials", "chosen", "val. acc (chosen)", "val. acc (worst trial)"], body)


def trials_table(strategy: str) -> str:
    """Every tuning trial of ``strategy`` (validation scores), in the order of its first setting."""
    c = choice(strategy)
    rows = sorted(c["candidates"], key=lambda t: [number(o.split("=", 1)[1]) for o in t["overrides"]])
    body = [[tex(short(t["overrides"])) + (" (chosen)" if t["overrides"] == c["chosen"] else ""),
             *(fmt(t[m]) for m in ("acc", "learning_acc", "forgetting"))] for t in rows]  # fmt: skip
    return latex_table(["trial", "acc", "learning acc", "forgetting"], body)


def chosen(strategy: str, key: str, root: Path | None = None) -> str:
    """The value the tuning chose for ``key`` (an override name) of ``strategy``."""
    c = choice(strategy, root)
    found = [o.split("=", 1)[1] for o in c["chosen"] if o.split("=", 1)[0] == key]
    if not found:
        raise KeyError(f"{strategy}'s tuning chose no {key}: {c['chosen']}")
    return tex(found[0])


def alternative(strategy: str, metric: str) -> str:
    """The trial of ``strategy``'s tuning that ``metric`` (validation) would have chosen, against the
    chosen one: ``lr=0.0002 (0.782; chosen lr=0.0004: 0.781)``, or ``lr=0.0004 as well (0.781)``."""
    c = choice(strategy)
    best = max(c["candidates"], key=lambda t: t[metric])
    chosen = c["candidates"][0]
    if best is chosen:
        return tex(f"{short(best['overrides'])} as well ({fmt(best[metric])})")
    return tex(
        f"{short(best['overrides'])} ({fmt(best[metric])}; chosen {short(chosen['overrides'])}: {fmt(chosen[metric])})"
    )


def number(text: str):
    """A chosen value as the search space holds it (YAML reads ``5e-05``, without a dot, as text)."""
    try:
        return float(text)
    except ValueError:
        return yaml.safe_load(text)


def edges() -> str:
    """Strategies whose chosen value of a searched setting is the lowest or highest tried (the declared
    grid and the trials that stepped past it)."""
    from cl.tune import search_space

    found = []
    for path in sorted(STUDY.glob("tuning/*/choice.yaml")):
        strategy = path.parent.name
        space = search_space([f"strategy={strategy}"])
        tried = [o for f in path.parent.glob("trial*/.hydra/overrides.yaml") for o in yaml.safe_load(f.read_text())]
        for override in choice(strategy)["chosen"]:
            key, value = override.split("=", 1)
            steps = [number(o.split("=", 1)[1]) for o in tried if o.startswith(f"{key}=")]  # past the grid too
            candidates, chosen = sorted({*space.get(key, []), *steps}), number(value)
            if len(candidates) > 2 and chosen in (candidates[0], candidates[-1]):
                side = "lowest" if chosen == candidates[0] else "highest"
                found.append(rf"{tex(strategy)} ({tex(key)} at its {side} candidate, {value})")
    return "; ".join(found) if found else "none"


def percent(x: float) -> str:
    """``43%``; a share under 1% keeps a decimal (``0.2%``), so one task in hundreds does not print as 0%."""
    if math.isnan(x):
        return "n/a"
    return (f"{x:.1%}" if 0 < x < 0.01 else f"{x:.0%}").replace("%", r"\%")


def over_tasks(selections, field: str) -> float:
    """``field`` of ``selection_summary`` entries (``at_cap``, ``chosen``) averaged over every
    (run, trained task): each task weighted by the runs that trained it."""
    found = [(sel[field], sel["runs_at"][0]) for sel in selections if sel["runs_at"]]
    total = sum(n for _, n in found)
    return sum(x * n for x, n in found) / total if total else math.nan


def share_at_cap(runs: list[dict]) -> float:
    """Of every (run, trained task), the share whose best validation was the last epoch allowed."""
    return over_tasks(selection_summary(runs).values(), "at_cap")


def mean_chosen(runs: list[dict]) -> float:
    """The chosen epoch (1-based), averaged over every (run, trained task)."""
    return over_tasks(selection_summary(runs).values(), "chosen")


def convergence_pairs() -> dict[str, tuple[dict, dict]]:
    """strategy -> ({(seed, order): study run}, {(seed, order): rerun with the higher cap}), on the
    (seed, order) pairs both finished."""
    return pairs_of(CONVERGENCE, baseline())


@functools.cache  # every {{conv:...}} placeholder reads the same runs: load them once per build
def pairs_of(convergence: Path, study_root: Path) -> dict[str, tuple[dict, dict]]:
    reruns = defaultdict(dict)
    for r in load_runs([str(convergence)]) if convergence.exists() else []:
        if r.get("status") == "finished":
            reruns[r["strategy"]][(r["seed"], order_of(r))] = r
    pairs = {}
    for strategy, keyed in reruns.items():
        study = finished(study_root / "task" / strategy)
        shared = sorted(set(study) & set(keyed))
        pairs[strategy] = ({k: study[k] for k in shared}, {k: keyed[k] for k in shared})
    return pairs


def finished(folder: Path) -> dict[tuple, dict]:
    """The finished runs under ``folder``, keyed by (seed, order) as ``by_seed`` takes them."""
    return {(r["seed"], order_of(r)): r for r in load_runs([str(folder)]) if r.get("status") == "finished"}


def by_seed(runs: dict, metric: str, minus: dict | None = None) -> list[float]:
    """``metric`` of runs keyed by (seed, order), less that of ``minus``'s run of the same key when
    given, averaged over each seed's task orders: the seed is the unit of replication (runs of one
    seed share their data splits across orders), as in the report's intervals."""
    seeds = defaultdict(list)
    for key, run in runs.items():
        seeds[key[0]].append(values(run)[metric] - (values(minus[key])[metric] if minus else 0.0))
    return [statistics.fmean(xs) for xs in seeds.values()]


def convergence(key: list[str]) -> str:
    from cl.analysis.inference import t_interval

    if key[0] == "class":  # {{conv:class:naive:acc}}: the baseline study's class-incremental runs
        return fmt(t_interval(by_seed(finished(baseline() / "class" / key[1]), key[2])), latex=True)
    pairs = convergence_pairs()
    if not pairs:
        raise SystemExit(f"paper/build.py: no finished runs under {CONVERGENCE}; run scripts/convergence.sh")
    order = [s for s in ("naive", "low_lr", "freeze", "lora", "distill", "replay") if s in pairs]
    order += sorted(set(pairs) - set(order))
    reruns = [r for s in order for r in pairs[s][1].values()]
    based = [r for s in order for r in pairs[s][0].values()]  # the baseline's runs of the same seeds and orders
    if key in (["cap"], ["cap", "base"]):
        return str((reruns if len(key) == 1 else based)[0]["config"]["trainer"]["max_epochs"])
    if key in (["atcap"], ["atcap", "base"]):
        return percent(share_at_cap(reruns if len(key) == 1 else based))
    if key in (["patience"], ["patience", "base"]):  # early stopping's, as the runs were configured
        return str((reruns if len(key) == 1 else based)[0]["config"]["selection"]["patience"])
    if key == ["cost", "base"]:  # the baseline study's whole compute, tuning included
        return f"{thread_seconds(study_runs(baseline())) / 3600:.1f}"
    if key in (["moved"], ["tunings"], ["unmoved"]):  # which tunings chose otherwise in the two studies
        both = sorted({p.parent.name for p in STUDY.glob("tuning/*/choice.yaml")}
                      & {p.parent.name for p in baseline().glob("tuning/*/choice.yaml")})  # fmt: skip
        same = [s for s in both if sorted(choice(s)["chosen"]) == sorted(choice(s, baseline())["chosen"])]
        if key == ["unmoved"]:  # "freeze's, low\_lr's and naive's"
            owned = [f"{tex(s)}'s" for s in same] or ["no strategy's"]
            return " and ".join(filter(None, [", ".join(owned[:-1]), owned[-1]]))
        return str(len(both) - len(same) if key == ["moved"] else len(both))
    if key[0] == "chosen":  # {{conv:chosen:lora:strategy.lora.lr}}: the baseline study's tuning choice
        return chosen(key[1], key[2], baseline())
    if key == ["hours"]:
        return f"{thread_seconds(reruns) / 3600:.1f}"
    if key in (["ratio"], ["projected"]):  # compute of the reruns over that of the study's runs they rerun
        ratio = thread_seconds(reruns) / thread_seconds(based)
        # projected: the whole study at that ratio, in hours of one CPU thread
        return f"{ratio:.1f}" if key == ["ratio"] else f"{ratio * thread_seconds(study_runs(baseline())) / 3600:.0f}"
    metrics = ("learning_acc", "acc", "forgetting", "train_s")
    if key[0] in ("diff", "at", "n"):
        study, rerun = pairs[key[1]]
        if key[0] == "n":
            return str(len({seed for seed, _ in rerun}))
        if key[0] == "at":
            return percent(share_at_cap(list(rerun.values())))
        return fmt(t_interval(by_seed(rerun, key[2], minus=study)), latex=True)

    def cell(xs: list[float], metric: str) -> str:
        return fmt(t_interval(xs), 0 if metric == "train_s" else 3, latex=True)

    body = []
    for strategy in order:
        study, rerun = pairs[strategy]
        for runs in (study, rerun):
            found = list(runs.values())
            body.append([tex(strategy) if runs is study else "", str(found[0]["config"]["trainer"]["max_epochs"]),
                         str(len({seed for seed, _ in runs})), percent(share_at_cap(found)),
                         f"{mean_chosen(found):.1f}", *(cell(by_seed(runs, m), m) for m in metrics)])  # fmt: skip
        differences = [cell(by_seed(rerun, m, minus=study), m) for m in metrics]
        body.append(["", "difference", "", "", "", *differences])
    head = ["strategy", "epoch cap", "seeds", "at cap", "chosen epoch", "learning acc", "acc", "forgetting", "train s"]
    return latex_table(head, body)


def versions() -> str:
    """The libraries the study's runs and trials recorded: one version, or each with its count."""
    runs = study_runs()
    parts = []
    for lib in ("torch", "lightning", "transformers", "peft", "datasets"):
        counts = Counter(r.get("versions", {}).get(lib, "unrecorded") for r in runs).most_common()
        if len(counts) == 1:
            parts.append(f"{lib} {counts[0][0]}")
        else:
            parts.append(f"{lib} " + " or ".join(f"{v} ({n} of {len(runs)})" for v, n in counts))
    return tex(", ".join(parts))


def study_runs(root: Path | None = None) -> list[dict]:
    return runs_under(root or STUDY)


@functools.cache  # the cost, trial count, versions and baseline placeholders all read every run file
def runs_under(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("results.json"))]


def cost(kind: str) -> str:
    """Compute measured inside the runs (set-up, evaluation and training; process start-up not
    counted), in hours of one CPU thread, over every tuning trial and final run of the study."""
    runs = study_runs()
    if kind == "runs":
        return str(sum(r.get("evaluated_on") != "validation" for r in runs))
    return f"{thread_seconds(runs) / 3600:.1f}"


def at_cap(stats: dict) -> str:
    """The share of trained tasks, over every run, whose best validation was the last allowed."""
    return percent(over_tasks((sel for row in stats["strategies"].values()
                               for sel in row.get("selection", {}).values()), "at_cap"))  # fmt: skip


def lm(key: list[str]) -> str:
    runs = [r for r in load_runs([str(LM)]) if r.get("status") == "finished"]
    if key == ["table"]:
        head = ["strategy", "acc", "bwt", "forgetting", "learning acc", "repeat drop", "hamlet drop", "train+eval s"]
        body = []
        for r in sorted(runs, key=lambda r: -r["metrics"]["acc"]):
            m = r["metrics"]
            wall = r["initial_eval_seconds"] + sum(r["train_seconds"]) + sum(r["eval_seconds"])
            name = label(r)
            keys = ("acc", "bwt", "forgetting", "learning_acc", "general_drop/repeat", "general_drop/hamlet")
            body.append([tex(name), *(fmt(m.get(k)) for k in keys), f"{wall:.0f}"])
        return latex_table(head, body)
    strategy, metric = key
    return fmt(statistics.fmean(r["metrics"][metric] for r in runs if r["strategy"] == strategy))


def routing(key: str) -> str:
    """Routed LoRA (class-incremental): the share of test inputs of seen tasks routed to their own
    task's adapter, or the accuracy with the true task's adapter, after the last task."""
    from cl.analysis.inference import t_interval

    runs = [json.loads(p.read_text()) for p in sorted(STUDY.glob("class/routed_lora/*/*/results.json"))]
    found = [r["strategy_report"][-1][key] for r in runs if r.get("status") == "finished"]
    return fmt(t_interval(found), latex=True) if found else "n/a"


def value(key: str, reports: dict) -> str:
    kind, *rest = key.split(":")
    if kind in ("ci", "mean", "diff", "n"):
        row = reports[rest[0]]["strategies"][rest[1]]
        if kind == "ci":
            return fmt(row[rest[2]], latex=True)
        if kind == "mean":
            return fmt(row[rest[2]][0])
        if kind == "diff":
            return fmt(row["paired"][rest[2]], latex=True)
        return str(row["acc"][2])
    if kind in ("runs", "seeds", "orders", "orderlist", "tests"):
        stats = reports[rest[0]]
        if kind == "orderlist":
            return ", ".join(stats["orders"])
        return str(stats[kind] if kind in ("runs", "tests") else len(stats[kind]))
    if kind == "rank":
        return " $>$ ".join(tex(s) for s in reports[rest[0]]["rank_by_order"][rest[1]])
    if kind == "separated":
        by = {}  # "distill acc" -> distill: acc, ...
        for item in reports[rest[0]]["separated"]:
            strategy, metric = item.split(" ", 1)
            by.setdefault(strategy, []).append(metric.replace("_", " "))
        return "; ".join(rf"\textbf{{{tex(s)}}} in {', '.join(ms)}" for s, ms in by.items()) if by else "none"
    if kind == "atcap":
        return at_cap(reports[rest[0]])
    if kind == "size":
        return str(sizes()[rest[0]][f"{rest[1]}_per_class"])
    if kind == "tuning":
        return tuning_table()
    if kind == "edges":
        return edges()
    if kind == "alt":
        return alternative(rest[0], rest[1])
    if kind == "trialtable":
        return trials_table(rest[0])
    if kind == "chosen":
        return chosen(rest[0], rest[1])
    if kind == "trials":
        return str(sum(r.get("evaluated_on") == "validation" for r in study_runs()))
    if kind == "cost":
        return cost(rest[0])
    if kind == "versions":
        return versions()
    if kind == "lm":
        return lm(rest)
    if kind == "routing":
        return routing(rest[0])
    if kind == "conv":
        return convergence(rest)
    if kind == "table":
        return tables(reports[rest[0]], latex=True)[rest[1]]
    if kind == "figure":
        return rf"\includegraphics[width=\linewidth]{{generated/{rest[0]}/{rest[1]}.pdf}}"
    raise KeyError(f"unknown placeholder {{{{{key}}}}}")


def render(template: Path, target: Path, reports: dict) -> None:
    """Fill every placeholder; if any cannot be filled (a study not yet complete lacks its runs), name
    them all and leave ``target`` as it was."""
    failed = []

    def fill(match: re.Match) -> str:
        key = match.group(1).strip()
        try:
            return value(key, reports)
        except (KeyError, IndexError, ValueError, OSError) as e:
            failed.append(f"  {{{{{key}}}}}: {type(e).__name__}: {e}")
            return ""

    text = re.sub(r"\{\{([^}]+)\}\}", fill, template.read_text())
    if failed:
        raise SystemExit(f"paper/build.py: {len(failed)} placeholders of {template.name} cannot be filled from "
                         f"{STUDY} and the reports in paper/generated ({', '.join(sorted(reports))}); is every "
                         "run of the study finished?\n" + "\n".join(failed))  # fmt: skip
    target.write_text(text)


def main() -> None:
    reports = {p.parent.name: json.loads(p.read_text()) for p in sorted((HERE / "generated").glob("*/stats.json"))}
    render(HERE / "paper.tex.in", HERE / "paper.tex", reports)
    print("wrote paper/paper.tex")


if __name__ == "__main__":
    main()
