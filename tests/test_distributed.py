"""Two CPU processes through Lightning DDP (gloo), launched the way users launch it: from the CLI."""

import json

import pytest
import torch
from conftest import make_config
from test_run import cli

import cl.run
from cl.engine import checkpoint
from cl.engine.loop import ContinualLoop

# Three classes and five test examples per class: 15 per task, split 8/7 between the two processes,
# so a mean of per-process accuracies would differ from the true accuracy.
UNEVEN = [f"+stream.tasks.t{i}.source.num_classes=3" for i in range(3)]
UNEVEN += [f"stream.tasks.t{i}.test_per_class=5" for i in range(3)] + ["eval_batch_size=4"]
SETTINGS = ["experiment=synthetic", "strategy=replay", "trainer.max_epochs=2", *UNEVEN]


def test_ddp_run_on_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    done = cli(*SETTINGS, *ddp, "logger=none", "keep_checkpoint=true", f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    res = json.loads((out / "results.json").read_text())
    assert res["status"] == "finished" and len(res["accuracy_matrix"]) == 3
    assert res["config"]["trainer"]["devices"] == 2
    # Each accuracy is a count out of 15: exact sums over both processes, not averaged shares.
    for row in [res["initial_accuracy"], *res["accuracy_matrix"]]:
        assert all(abs(a * 15 - round(a * 15)) < 1e-4 for a in row), row
    # Only rank 0 wrote; the replay memories of both ranks agreed (else the run fails at a task end).
    assert len(list(tmp_path.rglob("results.json"))) == 1
    assert res["strategy_report"][-1]["memory_examples"] == 200

    # The final model, evaluated in one process, gives the same last row.
    exp = cl.run.build(make_config(*SETTINGS))
    state = torch.load(out / checkpoint.FILE, weights_only=False)
    checkpoint.load_strategies(exp.callbacks, state)
    checkpoint.load_weights(exp.module, state)
    exp.settings.trainer, exp.settings.eval_batch_size = {"enable_progress_bar": False}, 4
    loop = ContinualLoop(exp, tmp_path / "single")
    assert loop.evaluate() == pytest.approx(res["accuracy_matrix"][-1], abs=1e-6)
