"""``python -m cl.analysis.tune <sweep folder>``: choose settings from a sweep's validation scores.

The sweep is a Hydra multirun over candidate settings, each run evaluated on validation splits held
out of the training data (``stream.validation_fraction=...`` ``stream.evaluate_on=validation``).
This reads every finished run below the folder, groups them by the settings that differ between
runs (means over seeds), and writes the candidates' metrics and the chosen settings, as overrides
the final runs take, to ``--out`` (YAML). A run scored on a test split is refused: settings must
never be chosen on test scores.
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from cl.engine.metrics import METRIC_NAMES


def candidates(folder: Path) -> dict[tuple, list[dict]]:
    """Finished runs grouped by their overrides (without seed and the folder settings)."""
    groups = defaultdict(list)
    for path in sorted(folder.rglob("results.json")):
        run = json.loads(path.read_text())
        if run.get("status") != "finished":
            continue
        if run.get("evaluated_on", "test") != "validation":
            raise SystemExit(
                f"cl.analysis.tune: {path.parent} was scored on its test split; choose settings on validation "
                "runs only (stream.validation_fraction=... stream.evaluate_on=validation)"
            )
        overrides = yaml.safe_load((path.parent / ".hydra" / "overrides.yaml").read_text())
        key = tuple(sorted(o for o in overrides if not o.startswith(("seed=", "hydra.", "skip_done", "logger"))))
        groups[key].append(run)
    return groups


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.analysis.tune", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a sweep folder of validation runs")
    parser.add_argument("--metric", default="acc", choices=METRIC_NAMES, help="what the chosen settings maximise")
    parser.add_argument("--out", required=True, help="YAML file for the candidates and the choice")
    args = parser.parse_args(argv)
    groups = candidates(Path(args.folder))
    if not groups:
        raise SystemExit(f"cl.analysis.tune: no finished runs under {args.folder}")
    varying = {o.split("=")[0] for key in groups for o in key}
    varying = {k for k in varying if len({o for key in groups for o in key if o.startswith(f"{k}=")}) > 1}
    rows = []
    for key, runs in groups.items():
        chosen = [o for o in key if o.split("=")[0] in varying]
        means = {m: statistics.fmean(r["metrics"][m] for r in runs if r["metrics"][m] is not None) for m in METRIC_NAMES
                 if any(r["metrics"][m] is not None for r in runs)}  # fmt: skip
        rows.append({"overrides": chosen, "runs": len(runs), **{m: round(v, 4) for m, v in means.items()}})
    rows.sort(key=lambda r: -r.get(args.metric, float("-inf")))
    best = rows[0]
    chosen = list(best["overrides"])  # a copy: YAML would write the shared list as an anchor
    out = {"chosen_by": f"mean validation {args.metric} over seeds", "chosen": chosen, "candidates": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(yaml.safe_dump(out, sort_keys=False))
    for r in rows:
        sys.stdout.write(f"{' '.join(r['overrides']):50} {args.metric} {r.get(args.metric)}  ({r['runs']} runs)\n")
    sys.stdout.write(f"chosen: {' '.join(best['overrides'])} -> {args.out}\n")


if __name__ == "__main__":
    main()
