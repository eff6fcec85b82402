#!/usr/bin/env bash
# Avalanche 0.6.0 in its own virtual environment (.venv-avalanche), for the whole-run comparison
# (python -m cl.analysis.bench --peers --avalanche-python .venv-avalanche/bin/python). Avalanche
# needs torchvision, and PyPI's torchvision does not import beside the CPU torch 2.13.0 this project
# installs, so that environment holds torch 2.14.1 and torchvision 0.29.1 (the pair that lies on this
# machine's disk) and this project too: run the comparison with that python for every system, so
# that all three use the same torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-avalanche
.venv-avalanche/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv-avalanche/bin/pip install -q avalanche-lib==0.6.0 -e .
echo "now: .venv-avalanche/bin/python -m cl.analysis.bench --peers --avalanche-python .venv-avalanche/bin/python"
