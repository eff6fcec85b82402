#!/usr/bin/env bash
# The comparison behind paper/: every strategy x 5 seeds x 3 task orders on the embedded stream at
# sweep sizes (configs/stream/text4_sweep.yaml, one epoch at lr 2e-4), then the report. Two Hydra
# multiruns share the strategies and run side by side, one CPU thread each (on 2 cores that gets
# more done than one run using both threads). About 90 minutes on 2 CPU cores.
# Runs land in fixed folders, so running it again skips finished runs and resumes stopped ones; it
# can run in the background:  nohup scripts/sweep.sh > sweep.log 2>&1 &
# Usage: scripts/sweep.sh [extra overrides...]   (e.g. logger=wandb logger.group=sweep-1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/sweep
mkdir -p "$out"
sweep() {
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m cl.run -m "strategy=$1" \
    'stream.order=[0,1,2,3],[2,0,3,1],[3,1,0,2]' 'seed=0,1,2,3,4' \
    stream=text4_sweep optimizer.lr=2e-4 trainer.max_epochs=1 \
    skip_done=true logger=none trainer.enable_progress_bar=false \
    hydra.sweep.dir="$out" 'hydra.sweep.subdir=${strategy_name}/order${order_name}/seed${seed}' "${@:2}"
}
sweep 'naive,joint,freeze,mc_dropout' "$@" > "$out/sweep_a.log" 2>&1 &
sweep 'low_lr,replay,distill,lora,[replay,distill]' "$@" > "$out/sweep_b.log" 2>&1 &
wait
python -m cl.report "$out" --out paper/generated
