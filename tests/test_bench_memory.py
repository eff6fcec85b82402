"""The memory bench's phase ledger: what it credits to which phase, and that its rows add up."""

import json
import subprocess
import sys

import pytest

from cl.analysis.bench_memory import PHASES, ledger


def test_ledger_credits_each_change_up_to_the_peak_to_the_phase_that_saw_it():
    samples = [("imports", 100.0), ("imports", 150.0), ("training", 400.0), ("evaluation", 350.0),
               ("training", 500.0), ("other (set-up, data, writing)", 200.0)]  # fmt: skip
    out = ledger(samples)
    assert out["peak"] == 500.0
    assert out["phases"] == {"imports": 150.0, "training": 400.0, "evaluation": -50.0, PHASES[1]: 0.0}
    assert sum(out["phases"].values()) == out["peak"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_memory_held_inside_a_function_named_evaluate_is_filed_under_evaluation(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("import time\n"
                      "def evaluate():\n"
                      "    held = bytearray(200 * 2**20)\n"
                      "    for i in range(0, len(held), 4096): held[i] = 1  # touch every page\n"
                      "    time.sleep(0.3)\n"
                      "    return held\n"
                      "kept = evaluate()\n")  # fmt: skip
    out = tmp_path / "trace.json"
    subprocess.run([sys.executable, "-m", "cl.analysis.bench_memory", str(out), str(script)], check=True)
    found = json.loads(out.read_text())
    assert 190 < found["phases"]["evaluation"] < 230
    assert found["phases"]["training"] == 0.0
    assert found["hwm"] >= found["peak"]
