#!/usr/bin/env bash
# Choose text4_lm's learning rates on validation data, never on test scores: a quarter of each task's
# training data is held out per class (stream.validation_fraction=0.25) and the runs are scored on
# it (stream.evaluate_on=validation). Candidates: full fine-tuning (naive) at three rates, LoRA
# isolation at three rates, one epoch, seed 0, the same budget for both. The choice maximises mean
# validation learning accuracy (each task's score right after training on it: a default must make
# the model learn every task; forgetting is what the strategies are compared on). Runs land in fixed
# folders and skip_done resumes a stopped sweep. About 35 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/tuning/text4_lm
common=(experiment=text4_lm stream.validation_fraction=0.25 stream.evaluate_on=validation seed=0
        skip_done=true logger=none trainer.enable_progress_bar=false)
python -m cl.run -m "${common[@]}" optimizer.lr=5e-5,1e-4,2e-4 \
  hydra.sweep.dir="$out/naive" 'hydra.sweep.subdir=lr${optimizer.lr}'
python -m cl.run -m "${common[@]}" strategy=lora strategy.lora.lr=3e-4,1e-3,3e-3 \
  hydra.sweep.dir="$out/lora" 'hydra.sweep.subdir=lr${strategy.lora.lr}'
for s in naive lora; do
  python -m cl.analysis.tune "$out/$s" --metric learning_acc --out "$out/$s/choice.yaml"
done
