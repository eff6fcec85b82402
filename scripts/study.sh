#!/usr/bin/env bash
# The study behind paper/ v2 (configs/experiment/study.yaml: MiniLM on text4_study, test splits of
# 400 per task, per-task model selection and early stopping on validation splits).
#   1. tuning: every strategy's declared search space (_search_), the same budget of $TRIALS trials
#      (the whole grid when smaller), on validation splits only (seed 0, default order), cl.tune;
#   2. task-incremental: every strategy with its chosen settings x 5 seeds x 3 task orders;
#   3. class-incremental: the strategies that need no task id x 5 seeds, default order;
#   4. the report (seed-clustered intervals, Holm-adjusted paired tests, rank intervals).
# Two lanes run side by side, one CPU thread each (on 2 cores that does more than one run on two).
# Everything lands in fixed folders and finished runs and trials are skipped, so the study can be
# stopped and started again, across sessions:  nohup scripts/study.sh > study.log 2>&1 &
# NOT RUN YET. A pilot (naive, default settings, one thread, 2026-12-01) took about 350 s: 230 s of
# training (up to 4 epochs a task), 95 s of evaluation (5 x 1,600 test texts), so this plan (72 trials,
# 210 runs) would need about 14 hours on two lanes, against a budget of about 6: to be cut before it
# runs (fewer trials and epochs, shorter texts, fewer class-incremental strategies).
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/study
TRIALS=${TRIALS:-6}
SEEDS=${SEEDS:-0,1,2,3,4}
ORDERS=${ORDERS:-'[0,1,2,3],[2,0,3,1],[3,1,0,2]'}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
lane_a=(naive replay distill lora multitask single_task)
lane_b=(low_lr freeze mc_dropout "[replay,distill]" joint step_matched)
class_il=(naive replay distill "[replay,distill]" joint multitask)

name() { local n=${1//[\[\]]/}; echo "${n//,/+}"; }

tune() {  # strategy
  local dir="$out/tuning/$(name "$1")"
  [ -f "$dir/choice.yaml" ] || python -m cl.tune experiment=study "strategy=$1" --trials "$TRIALS" --out "$dir"
}

final() {  # strategy scenario orders
  local chosen
  chosen=$(python -m cl.tune --print "$out/tuning/$(name "$1")/choice.yaml")
  # shellcheck disable=SC2086  # the chosen overrides are separate words
  python -m cl.run -m experiment=study "strategy=$1" $chosen "stream.scenario=$2" "seed=$SEEDS" "stream.order=$3" \
    hydra.sweep.dir="$out/$2" 'hydra.sweep.subdir=${strategy_name}/order${order_name}/seed${seed}'
}

lane() {  # strategies...
  for s in "$@"; do tune "$s"; done
  for s in "$@"; do final "$s" task "$ORDERS"; done
  for s in "$@"; do
    if [[ " ${class_il[*]} " == *" $s "* ]]; then final "$s" class '[0,1,2,3]'; fi
  done
}

mkdir -p "$out"
lane "${lane_a[@]}" > "$out/lane_a.log" 2>&1 &
lane "${lane_b[@]}" > "$out/lane_b.log" 2>&1 &
wait
python -m cl.analysis.report "$out/task" --out paper/generated/task
python -m cl.analysis.report "$out/class" --out paper/generated/class
