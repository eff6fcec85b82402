#!/usr/bin/env bash
# Commit the study's finished work so far (a study spans sessions): every run or tuning trial whose
# results.json says finished, with its folder (configs, log, matrix), and the tunings' choices.
# Unfinished folders stay out: they resume from checkpoints that are never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/study}
grep -l '"status": "finished"' -r --include=results.json "$out" | xargs -r -n 50 dirname | xargs -r git add --
find "$out" -name choice.yaml -print0 | xargs -0 -r git add --
git add -- "$out/jobs.txt" "$out/logs" "$out/study.log" 2>/dev/null || true
n=$(git diff --cached --name-only -- "$out" | grep -c results.json || true)
if [ "$n" -gt 0 ]; then
  # only the study's paths: whatever else the user has staged stays staged, out of this commit
  git commit -q -m "$out: $n more finished runs and trials ($(date -u +%F))" -- "$out" && echo "committed $n finished runs"
else
  git reset -q -- "$out"  # the logs alone are not worth a commit: leave the index as it was
  echo "nothing new finished under $out"
fi
