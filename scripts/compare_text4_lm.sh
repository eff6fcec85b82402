#!/usr/bin/env bash
# Every strategy on the embedded LM stream (experiment=text4_lm, SmolLM2-135M-Instruct), one seed,
# scored on the test splits, at the rates scripts/tune_text4_lm.sh chose on validation data: full
# fine-tuning at the preset's optimizer.lr, the adapters at the LoRA rate read from its choice.yaml.
# The other strategies keep their configs' settings (not tuned on this stream). Runs land in
# results/text4_lm/<strategy> and skip_done skips finished runs and resumes stopped ones, so the
# comparison can span sessions. About 10 minutes a run on 2 CPU cores (mc_dropout and joint more).
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/text4_lm
choice=results/tuning/text4_lm/lora/choice.yaml
lora_lr=$(python -c "import yaml; print(yaml.safe_load(open('$choice'))['chosen'][0].split('=')[1])")
common=(experiment=text4_lm seed=0 skip_done=true logger=none trainer.enable_progress_bar=false
        hydra.sweep.dir="$out" 'hydra.sweep.subdir=${strategy_name}')
python -m cl.run -m "${common[@]}" strategy=naive
python -m cl.run -m "${common[@]}" strategy=lora strategy.lora.lr="$lora_lr"
python -m cl.run -m "${common[@]}" strategy=replay,distill,freeze,low_lr,joint
python -m cl.run -m "${common[@]}" strategy=lora strategy.lora.method=ia3 strategy.lora.lr="$lora_lr" \
  'hydra.sweep.subdir=ia3'
python -m cl.run -m "${common[@]}" strategy=mc_dropout
# Beyond the peers (issue 16), against LoRA isolation above: SeqLoRA (one shared adapter), O-LoRA
# (an adapter per task, all summed, no task id), and full fine-tuning with general-data replay.
python -m cl.run -m "${common[@]}" strategy=lora strategy.lora.mode=shared strategy.lora.lr="$lora_lr" \
  'hydra.sweep.subdir=seqlora'
python -m cl.run -m "${common[@]}" strategy=olora strategy.olora.lr="$lora_lr"
python -m cl.run -m "${common[@]}" strategy=general_replay
python -m cl.analysis.report "$out" --runs --markdown "$out/table.md"
