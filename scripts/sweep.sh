#!/usr/bin/env bash
# The comparison behind paper/: every strategy x 5 seeds x 3 task orders on the embedded stream at
# sweep sizes (configs/stream/text4_sweep.yaml), then the report. About 90 minutes on 2 CPU cores.
# Runs land in fixed folders, so running it again skips finished runs and resumes stopped ones; it
# can run in the background:  nohup scripts/sweep.sh > sweep.log 2>&1 &
# Usage: scripts/sweep.sh [extra overrides...]   (e.g. logger=wandb logger.group=sweep-1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/sweep
python -m cl.run -m \
  'strategy=naive,joint,low_lr,freeze,mc_dropout,replay,distill,lora,[replay,distill]' \
  'stream.order=[0,1,2,3],[2,0,3,1],[3,1,0,2]' 'seed=0,1,2,3,4' \
  stream=text4_sweep optimizer.lr=2e-4 trainer.max_epochs=1 \
  skip_done=true logger=none trainer.enable_progress_bar=false \
  hydra.sweep.dir="$out" 'hydra.sweep.subdir=${strategy_name}/order${order_name}/seed${seed}' "$@"
python -m cl.report "$out" --out paper/generated
