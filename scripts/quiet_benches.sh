#!/usr/bin/env bash
# Every measurement that needs a quiet machine, one after another (about 1.5 hours on 2 CPU cores):
# nothing else may run meanwhile (a study, a test suite), or the ratios measure the contention.
#   1. whole runs against a plain loop and Avalanche (docs/benchmarks_peers.md), all three systems
#      under the same torch, the Avalanche environment's (scripts/avalanche_venv.sh);
#   2. where the peak-RSS gap arises, phase by phase, under the same torch (docs/benchmarks_memory.md);
#   3. the framework's costs (docs/benchmarks.md), then the memory held by imports;
#   4. group_by_length's effect on validation accuracy and training time (docs/grouping.md);
#   5. the default test suite's wall time (docs/test_time.md).
# Each step writes its own file, so a step that fails leaves the ones before it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-avalanche/bin/python ] || scripts/avalanche_venv.sh
.venv-avalanche/bin/python -m cl.analysis.bench --peers --avalanche-python .venv-avalanche/bin/python
.venv-avalanche/bin/python -m cl.analysis.bench --memory
python -m cl.analysis.bench
python -m cl.analysis.bench --imports
scripts/grouping.sh
start=$(date +%s)
python -m pytest -q -p no:cacheprovider > /tmp/quiet_suite.log 2>&1 || { tail -20 /tmp/quiet_suite.log; exit 1; }
seconds=$(( $(date +%s) - start ))
{
  echo "# Test suite wall time"
  echo
  echo "Made by \`scripts/quiet_benches.sh\` on $(nproc) CPU cores, nothing else running: \`python -m pytest\`"
  echo "(the default suite, pytest-xdist \`-n auto\`) took ${seconds} s; $(tail -1 /tmp/quiet_suite.log)"
} > docs/test_time.md
cat docs/test_time.md
