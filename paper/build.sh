#!/usr/bin/env bash
# Rebuild the paper from the committed study: the reports -> paper/generated/{task,class}, then
# paper.tex from its template, the PDF (LaTeX from Debian's texlive packages: the README's study section)
# and paper/README.md, the Markdown twin (pandoc).
set -euo pipefail
cd "$(dirname "$0")/.."
# which study of scripts/study.sh the paper reports (STUDY), and the earlier 3-epoch study whose runs
# of the same seeds and orders its section "What the cap changed" pairs with CONVERGENCE's (the
# reported study's task-incremental runs) (BASELINE); build.py reads all three. The template is
# written for these defaults: the paper on the 3-epoch study is at commit d4dd04b (paper/paper.pdf).
export STUDY=${STUDY:-results/converged} BASELINE=${BASELINE-results/study}
export CONVERGENCE=${CONVERGENCE:-$STUDY/task}
for scenario in task class; do
  python -m cl.analysis.report "$STUDY/$scenario" --out "paper/generated/$scenario" > /dev/null
done
python paper/build.py
cd paper
if command -v latexmk > /dev/null; then
  latexmk -pdf -interaction=nonstopmode -halt-on-error paper.tex > latexmk.log 2>&1 \
    || { tail -30 latexmk.log; echo "LaTeX failed: see paper/latexmk.log"; exit 1; }
  echo "wrote paper/paper.pdf"
else
  echo "no LaTeX toolchain (latexmk): paper.pdf not built (apt-get install latexmk texlive-latex-recommended"
  echo "texlive-fonts-recommended texlive-bibtex-extra lmodern)"
fi
if command -v pandoc > /dev/null; then
  # The twin shows the PNG of every figure; citations become author-year text with a reference list.
  sed 's/\.pdf}/.png}/' paper.tex | pandoc -s -f latex -t gfm --wrap=none --template twin.md --citeproc --bibliography refs.bib \
    -o README.md 2> pandoc.log || { cat pandoc.log; exit 1; }
  echo "wrote paper/README.md"
fi
