"""``python -m cl.analysis.bench --imports``: how much resident memory each layer of imports holds,
the part of the peak-RSS gap to a plain loop that is paid before any data or model is loaded.

Each line is a fresh process importing one more layer than the line before (the plain loop's torch
and transformers first, ``import cl.run`` last); its peak RSS is read after the imports, median of
``rounds`` processes (Linux: read from /proc). The last column lists the heavy top-level packages
that are loaded at that point and were not at the line before, so an import the run does not need
shows up by name.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

from cl.analysis.timing import platform_line

LAYERS = [
    ("torch + transformers (what the plain loop imports)", "import torch, transformers; "
     "from transformers import AutoModel, AutoTokenizer, get_scheduler"),
    ("+ lightning.pytorch (with torchmetrics, torch._dynamo)", "import lightning.pytorch"),
    ("+ hydra, omegaconf", "import hydra, omegaconf"),
    ("+ datasets (with pandas, pyarrow)", "import datasets"),
    ("import cl.run (the entry point: all of the above and the project)", "import cl.run"),
]  # fmt: skip
WATCH = ("accelerate", "datasets", "hydra", "lightning", "matplotlib", "pandas", "peft", "pyarrow", "scipy",
         "sklearn", "sympy", "torchmetrics", "transformers", "wandb")  # fmt: skip
# VmHWM, the peak of this process image, as cl.engine.results.peak_rss_mb reads it (the probe cannot
# import that without importing datasets): ru_maxrss would carry over the forking parent's peak
PROBE = """
import sys
{code}
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({watch!r}))
peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024
print(__import__('json').dumps([peak, loaded]))
"""


def probe(code: str) -> tuple[float, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(code=code, watch=WATCH)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    rss, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return rss, loaded


def main(doc: str, rounds: int = 3) -> None:
    rows, code, before, base = [], "", set(), None
    for label, extra in LAYERS:
        code = f"{code}\n{extra}"
        samples = [probe(code) for _ in range(rounds)]
        rss = statistics.median(s[0] for s in samples)
        loaded = set(samples[0][1])
        base = rss if base is None else base
        rows.append((label, f"{rss:.0f}", f"+{rss - base:.0f}", ", ".join(sorted(loaded - before)) or "-"))
        before = loaded
    header = "| imports | peak RSS MB | over the plain loop's | newly loaded |\n|---|---|---|---|"
    body = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    text = "\n".join(["# Memory held by imports", "",
                      f"Made by `python -m cl.analysis.bench --imports` on {platform_line()}; each line a fresh "
                      f"process importing one layer more than the line before, median of {rounds}.", "",
                      header, body, ""])  # fmt: skip
    sys.stdout.write(text)
    Path(doc).parent.mkdir(parents=True, exist_ok=True)
    Path(doc).write_text(text)
