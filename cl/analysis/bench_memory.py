"""``python -m cl.analysis.bench --memory``: where the peak-RSS gap between this framework and a plain
loop arises, phase by phase, on the peer bench's naive run (the same four tasks and settings as
``--peers``).

Each system runs in a fresh process under a sampler thread that reads VmRSS every 20 ms and files the
sample under the phase the main thread is in, read from its Python stack: imports, evaluation (a frame
named ``evaluate``, in both systems), training (a forward, backward, optimizer step or clipping outside
evaluation) or other (set-up, data, writing). Every change of RSS between two samples, up to the
sample of the peak, is credited to the phase of the later one, so each system's rows add up to its
peak: the gap column says in which phase the extra memory came to be held. The traced
process imports nothing of this project before the run (this module needs only the standard library).
"""

import json
import runpy
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

PHASES = ("imports", "other (set-up, data, writing)", "evaluation", "training")
TRAINING = {"forward", "backward", "_engine_run_backward", "step", "clip_grad_norm_", "training_step"}


def phase(frames) -> str:
    names = {f.f_code.co_name for f in frames}
    if "evaluate" in names:
        return "evaluation"
    if names & TRAINING:
        return "training"
    if "_find_and_load" in names:
        return "imports"
    return PHASES[1]


def stack(frame) -> list:
    out = []
    while frame is not None:
        out.append(frame)
        frame = frame.f_back
    return out


def status_mb(field: str) -> float:
    return int(Path("/proc/self/status").read_text().split(f"{field}:")[1].split()[0]) / 1024


def traced(argv: list[str], out: str) -> None:
    """Run ``cl.run`` (argv[0] == "cl.run") or a script in this process; write its ledger (``ledger``)
    and the kernel's peak to ``out``."""
    # the first sample is taken here, before the run: the thread's first may come after it started
    main, samples, done = threading.main_thread().ident, [("imports", status_mb("VmRSS"))], threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, frame = status_mb("VmRSS"), sys._current_frames().get(main)
            samples.append((phase(stack(frame)) if frame is not None else PHASES[1], rss))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sys.argv = list(argv)
    try:
        if argv[0] == "cl.run":
            runpy.run_module("cl.run", run_name="__main__")
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    finally:
        done.set()
        sampler.join()  # not left running into the interpreter's shutdown
        Path(out).write_text(json.dumps({**ledger(samples), "hwm": status_mb("VmHWM")}))


def ledger(samples: list[tuple[str, float]]) -> dict:
    """Each phase's share of the peak: the RSS changes up to the peak sample, credited to the phase of
    the sample that saw them (the first sample, the interpreter's start, counts as imports)."""
    top = max(range(len(samples)), key=lambda i: samples[i][1])
    shares = dict.fromkeys(PHASES, 0.0)
    shares["imports"] = samples[0][1]
    for (_, before), (where, now) in zip(samples[:top], samples[1 : top + 1]):
        shares[where] += now - before
    return {"phases": shares, "peak": samples[top][1]}


def run(argv: list[str], out: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "cl.analysis.bench_memory", str(out), *argv], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def main(out: str, doc: str) -> None:
    from cl.analysis.bench_peers import PEERS, export, model_folder
    from cl.analysis.timing import platform_line

    data, folder = export(Path(out) / "peers_data"), Path(out)
    shutil.rmtree(folder / "memory_ours", ignore_errors=True)  # a finished run there would be skipped
    ours = run(["cl.run", "--config-dir", str(data), "stream=peers", "strategy=naive", "logger=none",
                "trainer.enable_progress_bar=false", "trainer.max_epochs=1", f"hydra.run.dir={folder / 'memory_ours'}"],
               folder / "memory_ours.json")  # fmt: skip
    plain = run(
        [str(PEERS / "plain.py"), str(data), model_folder(), "--strategy", "naive"], folder / "memory_plain.json"
    )
    rows = [(p, ours["phases"][p], plain["phases"][p]) for p in PHASES]
    rows.append(("peak (the sum)", ours["peak"], plain["peak"]))
    rows.append(("VmHWM (the kernel's peak, spikes under 20 ms included)", ours["hwm"], plain["hwm"]))
    body = "\n".join(f"| {p} | {a:.0f} | {b:.0f} | {a - b:+.0f} |" for p, a, b in rows)
    text = "\n".join(["# Where the memory goes, ours against the plain loop", "",
                      f"Made by `python -m cl.analysis.bench --memory` on {platform_line()}; the peer bench's "
                      "naive run, one process per system, RSS sampled every 20 ms; each change up to the peak credited to "
                      "the phase it happened in.", "",
                      "| phase | ours: MB of the peak | plain loop | gap |", "|---|---|---|---|", body, ""])  # fmt: skip
    sys.stdout.write(text)
    Path(doc).parent.mkdir(parents=True, exist_ok=True)
    Path(doc).write_text(text)


if __name__ == "__main__":
    traced(sys.argv[2:], sys.argv[1])
