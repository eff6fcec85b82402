"""``python -m cl.analysis.bench --imports``: how much resident memory each layer of imports holds,
the part of the peak-RSS gap to a plain loop that is paid before any data or model is loaded.

Each line is a fresh process importing one more layer than the line before (the plain loop's torch
and transformers first, ``import cl.run`` last); its peak RSS is read after the imports, median of
``rounds`` processes (Linux: read from /proc). The last column lists the heavy top-level packages
that are loaded at that point and were not at the line before, so an import the run does not need
shows up by name.

A second table repeats the layers with the packages that torchmetrics imports only because they are
installed (scipy for its audio metrics, matplotlib for its plots; training and scoring need
neither, though the run draws its heatmap with matplotlib) hidden from the process: the least memory
the required stack's imports can hold in this environment. The processes see a copy of site-packages
made of links to every entry but those.
"""

import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
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


HIDDEN = ("scipy", "matplotlib", "mpl_toolkits", "pylab")  # torchmetrics imports them if it finds them
ROOT = Path(__file__).resolve().parents[2]


def probe(code: str, path: str | None = None) -> tuple[float, list[str]]:
    """Peak RSS (MB) and the watched packages loaded; ``path``: run without site-packages, on this path."""
    cmd, env = [sys.executable, "-c", PROBE.format(code=code, watch=WATCH)], None
    if path:  # -S: no site-packages and no .pth files (the editable install's), so the project goes on the path
        cmd, env = [sys.executable, "-S", *cmd[1:]], {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{ROOT}"}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    rss, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return rss, loaded


def site_without(folder: Path, hidden: tuple[str, ...] = HIDDEN) -> Path:
    """``folder`` filled with links to every entry of site-packages except the ``hidden`` packages
    (their modules, dist-info and bundled libraries), so that neither import nor metadata finds them."""
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name.split("-")[0].split(".")[0].lower()
        if name not in hidden and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


def layers(rounds: int, path: str | None = None) -> list[tuple[str, str, str, str]]:
    rows, code, before, base = [], "", set(), None
    for label, extra in LAYERS:
        code = f"{code}\n{extra}"
        samples = [probe(code, path) for _ in range(rounds)]
        rss = statistics.median(s[0] for s in samples)
        loaded = set(samples[0][1])
        base = rss if base is None else base
        rows.append((label, f"{rss:.0f}", f"+{rss - base:.0f}", ", ".join(sorted(loaded - before)) or "-"))
        before = loaded
    return rows


def main(doc: str, rounds: int = 3) -> None:
    header = "| imports | peak RSS MB | over the plain loop's | newly loaded |\n|---|---|---|---|"
    markdown = lambda rows: "\n".join([header, *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)])  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        lean = layers(rounds, str(site_without(Path(tmp))))
    text = "\n".join(["# Memory held by imports", "",
                      f"Made by `python -m cl.analysis.bench --imports` on {platform_line()}; each line a fresh "
                      f"process importing one layer more than the line before, median of {rounds}.", "",
                      markdown(layers(rounds)), "",
                      f"The same with {', '.join(HIDDEN[:2])} hidden from the processes (torchmetrics imports "
                      "them whenever they are installed; training and scoring need neither, though the run "
                      "imports matplotlib when it draws its heatmap): the least Lightning, Hydra and datasets "
                      "hold here.", "",
                      markdown(lean), ""])  # fmt: skip
    sys.stdout.write(text)
    Path(doc).parent.mkdir(parents=True, exist_ok=True)
    Path(doc).write_text(text)
