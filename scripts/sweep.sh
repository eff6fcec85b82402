#!/usr/bin/env bash
# The comparison behind paper/ (configs/experiment/sweep.yaml: every strategy x 5 seeds x 3 task
# orders on text4 at sweep sizes), then the report. Two Hydra multiruns split the strategies and run
# side by side, one CPU thread each (on 2 cores that gets more done than one run using both threads).
# About 90 minutes on 2 CPU cores. Runs land in fixed folders, so running it again skips finished runs
# and resumes stopped ones; it can run in the background:  nohup scripts/sweep.sh > sweep.log 2>&1 &
# Usage: scripts/sweep.sh [extra overrides...]   (e.g. logger=wandb logger.group=sweep-1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/sweep
mkdir -p "$out"
sweep() {
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m cl.run -m experiment=sweep "hydra.sweeper.params.strategy=\"$1\"" "${@:2}"
}
sweep 'naive,joint,freeze,mc_dropout' "$@" > "$out/sweep_a.log" 2>&1 &
sweep 'low_lr,replay,distill,lora,[replay,distill]' "$@" > "$out/sweep_b.log" 2>&1 &
wait
python -m cl.analysis.report "$out" --out paper/generated
