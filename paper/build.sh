#!/usr/bin/env bash
# Rebuild the paper from the committed study: the reports -> paper/generated/{task,class,convergence}, then
# paper.tex from its template, the PDF (LaTeX from Debian's texlive packages, see paper/README.md)
# and paper/README.md, the Markdown twin (pandoc).
set -euo pipefail
cd "$(dirname "$0")/.."
export STUDY=${STUDY:-results/study}  # which study of scripts/study.sh the paper reports (build.py reads it too)
for scenario in task class; do
  python -m cl.analysis.report "$STUDY/$scenario" --out "paper/generated/$scenario" > /dev/null
done
# the runs at a higher epoch cap (scripts/convergence.sh's reruns unless CONVERGENCE says otherwise;
# build.py reads it and BASELINE too): their learning curves
export CONVERGENCE=${CONVERGENCE:-results/convergence/task}
python -m cl.analysis.report "$CONVERGENCE" --out paper/generated/convergence > /dev/null
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
