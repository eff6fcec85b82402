"""Render paper/paper.tex and paper/README.md from their templates and the report's stats.json.

Every number in the paper comes from here: ``{{...}}`` placeholders are filled from
``paper/generated/stats.json`` (made by ``python -m cl.analysis.report``) and from the sweep's config files.

    {{ci:replay:acc}}        mean ± 95% CI        {{mean:replay:acc}}   mean only
    {{diff:replay:acc}}      paired difference to naive, mean ± 95% CI
    {{n:replay}}             finished runs         {{runs}} {{seeds}} {{orders}}
    {{rank:<order>}}         strategies by final accuracy under that task order
    {{size:news:train}}      examples per class of a task in the sweep stream (train or test)
    {{single:naive:forgetting}}  a metric of the one-seed full-size run in results/text4_strategies
    {{table:main}}           a generated table (Markdown in README.md, LaTeX in paper.tex)
    {{figure:heatmaps}}      a generated figure
"""

import json
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cl.analysis.report import fmt, tables  # noqa: E402


def sizes() -> dict:
    stream = yaml.safe_load((HERE.parent / "configs" / "stream" / "text4_sweep.yaml").read_text())
    return stream["tasks"]


def value(key: str, stats: dict, latex: bool) -> str:
    kind, *rest = key.split(":")
    rows = stats["strategies"]
    if kind == "ci":
        return fmt(rows[rest[0]][rest[1]], latex=latex)
    if kind == "mean":
        return fmt(rows[rest[0]][rest[1]][0])
    if kind == "diff":
        return fmt(rows[rest[0]]["paired"][rest[1]], latex=latex)
    if kind == "n":
        return str(rows[rest[0]]["acc"][2])
    if kind in ("runs", "seeds", "orders"):
        return str(stats[kind] if kind == "runs" else len(stats[kind]))
    if kind == "orderlist":
        return ", ".join(stats["orders"])
    if kind == "rank":
        return " > ".join(s.replace("_", r"\_") if latex else s for s in stats["rank_by_order"][rest[0]])
    if kind == "single":  # the one-seed, full-size comparison in results/text4_strategies
        for path in sorted((HERE.parent / "results" / "text4_strategies").rglob("results.json")):
            run = json.loads(path.read_text())
            if run["strategy"] == rest[0]:
                return fmt(run["metrics"][rest[1]])
        raise KeyError(f"no {rest[0]} run in results/text4_strategies")
    if kind == "size":
        return str(sizes()[rest[0]][f"{rest[1]}_per_class"])
    if kind == "table":
        text = tables(stats, latex=latex)[rest[0]]
        return text
    if kind == "figure":
        if latex:
            return rf"\includegraphics[width=\linewidth]{{generated/{rest[0]}.pdf}}"
        return f"![{rest[0]}](generated/{rest[0]}.png)"
    raise KeyError(f"unknown placeholder {{{{{key}}}}}")


def render(template: Path, target: Path, stats: dict, latex: bool) -> None:
    text = re.sub(r"\{\{([^}]+)\}\}", lambda m: value(m.group(1).strip(), stats, latex), template.read_text())
    target.write_text(text)


def main() -> None:
    stats = json.loads((HERE / "generated" / "stats.json").read_text())
    render(HERE / "paper.tex.in", HERE / "paper.tex", stats, latex=True)
    render(HERE / "paper.md.in", HERE / "README.md", stats, latex=False)
    print("wrote paper/paper.tex and paper/README.md")


if __name__ == "__main__":
    main()
