#!/usr/bin/env bash
# What group_by_length=true (training batches of similar length, as the HF Trainer's option) does to
# accuracy and training time: naive on the default stream, each task's validation split scored
# (a setting is judged on validation data), with and without grouping, paired by seed.
#   scripts/grouping.sh            # writes docs/grouping.md; finished runs are skipped on a rerun
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/grouping} SEEDS=${SEEDS:-0,1,2,3,4}
python -m cl.run -m group_by_length=false,true "seed=$SEEDS" stream.validation_fraction=0.2 \
  stream.evaluate_on=validation logger=none trainer.enable_progress_bar=false skip_done=true \
  hydra.sweep.dir="$OUT" 'hydra.sweep.subdir=grouped${group_by_length}/seed${seed}'
python - "$OUT" <<'EOF'
import json, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
runs = {}
for path in out.glob("grouped*/seed*/results.json"):
    r = json.loads(path.read_text())
    if r["status"] == "finished":
        runs[(path.parent.parent.name == "groupedTrue", r["seed"])] = r
seeds = sorted({s for g, s in runs if (not g, s) in runs})
rows = []
for s in seeds:
    plain, grouped = runs[(False, s)], runs[(True, s)]
    rows.append((s, plain["metrics"]["acc"], grouped["metrics"]["acc"],
                 sum(plain["train_seconds"]), sum(grouped["train_seconds"])))
diff = [g - p for _, p, g, _, _ in rows]
speed = [pt / gt for *_, pt, gt in rows]
half = 2.776 * statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) == 5 else float("nan")  # t(0.975, 4)
lines = ["# group_by_length: accuracy and training time", "",
         "Made by `scripts/grouping.sh`: naive on the default stream (MiniLM, text4), validation splits "
         "(20% of each task's training data), final average accuracy, paired by seed.", "",
         "| seed | acc, shuffled | acc, grouped | train s, shuffled | train s, grouped |", "|---|---|---|---|---|"]
lines += [f"| {s} | {p:.4f} | {g:.4f} | {pt:.1f} | {gt:.1f} |" for s, p, g, pt, gt in rows]
lines += ["", f"Grouped - shuffled accuracy: mean {statistics.fmean(diff):+.4f}"
          + (f", 95% t-interval +-{half:.4f} over {len(diff)} seeds" if diff and half == half else ""),
          f"Training time, shuffled / grouped: median {statistics.median(speed):.2f}" if speed else ""]
text = "\n".join(lines) + "\n"
Path("docs/grouping.md").write_text(text)
print(text)
EOF
