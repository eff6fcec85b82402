#!/usr/bin/env bash
# Every strategy (and replay+distill) on the embedded text4 stream, one seed, then the README table.
# About 35 minutes on 2 CPU cores. The committed table was made with eval_batch_size=128 (the
# default then; evaluation batch size changes timings only). Usage: scripts/compare_strategies.sh [seed] [extra overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0}; shift || true
out=results/text4_strategies
python -m cl.run -m 'strategy=naive,joint,low_lr,freeze,mc_dropout,replay,distill,lora,[replay,distill]' \
  seed="$seed" eval_batch_size=128 logger=none trainer.enable_progress_bar=false hydra.sweep.dir="$out" "$@"
python -m cl.analysis.report "$out" --runs --markdown "$out/table.md"
