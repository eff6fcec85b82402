#!/usr/bin/env bash
# Rebuild the paper from the committed sweep: report -> paper/generated, then paper.tex and
# README.md from their templates, then the PDF where a LaTeX toolchain is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m cl.analysis.report results/sweep --out paper/generated > /dev/null
python paper/build.py
if command -v latexmk > /dev/null; then
  (cd paper && latexmk -pdf -interaction=nonstopmode paper.tex > /dev/null && echo "wrote paper/paper.pdf")
else
  echo "no LaTeX toolchain (latexmk): paper.pdf not built; paper/README.md is the readable twin"
fi
