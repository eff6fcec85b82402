"""``python -m cl.report <folders...>``: a table of the runs found under the given folders.

Reads every ``results.json`` below the folders and prints one row per run: the stream metrics,
trainable parameters and wall time. ``--markdown FILE`` also writes the table to a file.
"""

import argparse
import json
import sys
from pathlib import Path

COLUMNS = ("acc", "avg_incremental_acc", "bwt", "forgetting", "learning_acc")


def load_runs(folders: list[str]) -> list[dict]:
    runs = []
    for folder in folders:
        path = Path(folder)
        if not path.exists():
            raise SystemExit(f"cl.report: {folder} does not exist")
        found = sorted(path.rglob("results.json")) if path.is_dir() else [path]
        if not found:
            raise SystemExit(f"cl.report: no results.json under {folder}; run python -m cl.run first")
        runs += [json.loads(p.read_text()) | {"path": str(p.parent)} for p in found]
    return runs


def wall_seconds(run: dict) -> float:
    return run["initial_eval_seconds"] + sum(run["train_seconds"]) + sum(run["eval_seconds"])


def markdown_table(runs: list[dict]) -> str:
    head = ["strategy", "seed", *COLUMNS, "trainable params", "train + eval s", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(runs, key=lambda r: (r["stream"], -(r["metrics"]["acc"] or 0), r["seed"])):
        m = r["metrics"]
        cells = [r["strategy"], str(r["seed"]), *(f"{m[c]:.3f}" if m[c] is not None else "n/a" for c in COLUMNS)]
        cells += [f"{r['trainable_params'][-1]:,}" if r["trainable_params"] else "n/a", f"{wall_seconds(r):.0f}"]
        cells.append(r["status"] if r["status"] == "finished" else f"{r['status']} ({r['completed_tasks']} tasks)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.report", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="run or sweep folders holding results.json files")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    table = markdown_table(load_runs(args.folders))
    sys.stdout.write(table)
    if args.markdown:
        Path(args.markdown).write_text(table)


if __name__ == "__main__":
    main()
