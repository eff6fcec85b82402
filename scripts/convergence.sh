#!/usr/bin/env bash
# Did the study's 3-epoch cap decide its results? The study (scripts/study.sh) stopped each task at
# 3 epochs, and 43% of trained tasks had their best validation at that cap (most of them naive's
# and low_lr's). This reruns strategies with their study choices and one change, the cap raised to
# $CAP epochs (early stopping on validation with the study's patience of 1 ends a task sooner), in
# the default order, into results/convergence/task: naive and low_lr (the most capped) with 5 seeds,
# then replay, lora, freeze and distill with 3 (STRATEGIES and SEEDS choose others). The 3-epoch
# paper (commit d4dd04b) compared them with the study's runs of the same seeds; what they showed led
# to experiment=converged, which the paper now reports. A longer cap also stretches the linear
# learning-rate schedule over more steps: that is what training longer means in this protocol.
# Two lanes of one CPU thread each, as the study; finished runs are skipped, so it can be stopped and
# started again:
#   nohup scripts/convergence.sh >> results/convergence/convergence.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-results/convergence} CAP=${CAP:-10}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT/logs"
run() {  # STRATEGY SEEDS
  # shellcheck disable=SC2046  # the chosen overrides are separate words
  python -m cl.run -m experiment=study "strategy=$1" $(python -m cl.tune --print "results/study/tuning/$1/choice.yaml") \
    trainer.max_epochs="$CAP" stream.scenario=task "seed=$2" 'stream.order=[0,1,2,3]' hydra.sweep.dir="$OUT/task" \
    'hydra.sweep.subdir=${strategy_name}/order${order_name}/seed${seed}'
}
export -f run
if [ -n "${STRATEGIES:-}" ]; then
  jobs=$(for s in $STRATEGIES; do echo "$s ${SEEDS:-0,1,2}"; done)
else
  # the longest (replay) first, so that the two lanes end together
  jobs=$(printf '%s\n' "naive 0,1,2,3,4" "low_lr 0,1,2,3,4" "replay 0,1,2" "lora 0,1,2" "freeze 0,1,2" "distill 0,1,2")
fi
echo "$jobs" | xargs -P 2 -L 1 bash -c 'run "$1" "$2" >> "$OUT/logs/$1.log" 2>&1 || echo "failed: $1"' _
python -m cl.analysis.report "$OUT/task"  # the summary; paper/build.sh draws its figures
