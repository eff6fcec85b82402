"""Render paper/paper.tex from paper/paper.tex.in, the study's reports and its committed files.

Every number in the paper comes from here: ``{{...}}`` placeholders are filled from the reports of
``cl.analysis.report`` (``paper/generated/<report>/stats.json``, reports ``task`` and ``class``), the
tuning choices and run files under ``results/study`` and the language-model runs in ``results/text4_lm``.

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
    {{lm:table}}                 the one-seed language-model comparison   {{lm:naive:forgetting}}
    {{routing:routing_acc}}      routed LoRA's routing (or oracle_acc) accuracy after the last task, ± CI over seeds
"""

import json
import re
import statistics
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from cl.analysis.report import fmt, label, latex_table, load_runs, tables  # noqa: E402

STUDY = ROOT / "results" / "study"
LM = ROOT / "results" / "text4_lm"


def tex(name: str) -> str:
    return name.replace("_", r"\_")


def sizes() -> dict:
    return yaml.safe_load((ROOT / "configs" / "stream" / "text4_study.yaml").read_text())["tasks"]


def short(overrides: list[str]) -> str:
    """``lr=0.0002, ratio=2.0``: overrides named by the last part of their key."""
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={v}" for key, v in (o.split("=", 1) for o in overrides))


def tuning_table() -> str:
    """One row per strategy: trials run, the chosen settings and their validation accuracy."""
    body = []
    for choice in sorted(STUDY.glob("tuning/*/choice.yaml")):
        c = yaml.safe_load(choice.read_text())
        best = c["candidates"][0]
        worst = c["candidates"][-1]
        body.append([tex(choice.parent.name), str(len(c["candidates"])), tex(short(c["chosen"]) or "(none)"),
                     fmt(best["acc"]), fmt(worst["acc"])])  # fmt: skip
    return latex_table(["strategy", "trials", "chosen", "val. acc (chosen)", "val. acc (worst trial)"], body)


def trials_table(strategy: str) -> str:
    """Every tuning trial of ``strategy`` (validation scores), in the order of its first setting."""
    c = yaml.safe_load((STUDY / "tuning" / strategy / "choice.yaml").read_text())
    rows = sorted(c["candidates"], key=lambda t: [number(o.split("=", 1)[1]) for o in t["overrides"]])
    body = [[tex(short(t["overrides"])) + (" (chosen)" if t["overrides"] == c["chosen"] else ""),
             *(fmt(t[m]) for m in ("acc", "learning_acc", "forgetting"))] for t in rows]  # fmt: skip
    return latex_table(["trial", "acc", "learning acc", "forgetting"], body)


def chosen(strategy: str, key: str) -> str:
    """The value the tuning chose for ``key`` (an override name) of ``strategy``."""
    c = yaml.safe_load((STUDY / "tuning" / strategy / "choice.yaml").read_text())
    found = [o.split("=", 1)[1] for o in c["chosen"] if o.split("=", 1)[0] == key]
    if not found:
        raise KeyError(f"{strategy}'s tuning chose no {key}: {c['chosen']}")
    return tex(found[0])


def alternative(strategy: str, metric: str) -> str:
    """The trial of ``strategy``'s tuning that ``metric`` (validation) would have chosen, against the
    chosen one: ``lr=0.0002 (0.782; chosen lr=0.0004: 0.781)``."""
    c = yaml.safe_load((STUDY / "tuning" / strategy / "choice.yaml").read_text())
    best = max(c["candidates"], key=lambda t: t[metric])
    chosen = c["candidates"][0]
    return tex(f"{short(best['overrides'])} ({fmt(best[metric])}; chosen {short(chosen['overrides'])}: "
               f"{fmt(chosen[metric])})")


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
    for choice in sorted(STUDY.glob("tuning/*/choice.yaml")):
        space = search_space([f"strategy={choice.parent.name}"])
        tried = [o for f in choice.parent.glob("trial*/.hydra/overrides.yaml") for o in yaml.safe_load(f.read_text())]
        for override in yaml.safe_load(choice.read_text())["chosen"]:
            key, value = override.split("=", 1)
            steps = [number(o.split("=", 1)[1]) for o in tried if o.startswith(f"{key}=")]  # past the grid too
            candidates, chosen = sorted({*space.get(key, []), *steps}), number(value)
            if len(candidates) > 2 and chosen in (candidates[0], candidates[-1]):
                side = "lowest" if chosen == candidates[0] else "highest"
                found.append(rf"{tex(choice.parent.name)} ({tex(key)} at its {side} candidate, {value})")
    return "; ".join(found) if found else "none"


def study_runs() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(STUDY.rglob("results.json"))]


def cost(kind: str) -> str:
    """Compute measured inside the runs (set-up, evaluation and training; process start-up not
    counted), in hours of one CPU thread, over every tuning trial and final run of the study."""
    runs = study_runs()
    if kind == "runs":
        return str(sum(r.get("evaluated_on") != "validation" for r in runs))
    seconds = sum(sum((r.get("setup_seconds") or {}).values()) + r.get("initial_eval_seconds", 0)
                  + sum(r["train_seconds"]) + sum(r["eval_seconds"]) for r in runs)  # fmt: skip
    return f"{seconds / 3600:.1f}"


def at_cap(stats: dict) -> str:
    """The share of trained tasks, over every run, whose best validation was the last allowed."""
    shares = [(sel["at_cap"], sum(sel["runs_at"][:1])) for row in stats["strategies"].values()
              for sel in row.get("selection", {}).values()]  # fmt: skip
    total = sum(n for _, n in shares)
    return f"{sum(s * n for s, n in shares) / total:.0%}".replace("%", r"\%") if total else "n/a"


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
    if kind == "lm":
        return lm(rest)
    if kind == "routing":
        return routing(rest[0])
    if kind == "table":
        return tables(reports[rest[0]], latex=True)[rest[1]]
    if kind == "figure":
        return rf"\includegraphics[width=\linewidth]{{generated/{rest[0]}/{rest[1]}.pdf}}"
    raise KeyError(f"unknown placeholder {{{{{key}}}}}")


def render(template: Path, target: Path, reports: dict) -> None:
    text = re.sub(r"\{\{([^}]+)\}\}", lambda m: value(m.group(1).strip(), reports), template.read_text())
    target.write_text(text)


def main() -> None:
    reports = {p.parent.name: json.loads(p.read_text()) for p in sorted((HERE / "generated").glob("*/stats.json"))}
    render(HERE / "paper.tex.in", HERE / "paper.tex", reports)
    print("wrote paper/paper.tex")


if __name__ == "__main__":
    main()
