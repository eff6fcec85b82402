"""Several LoRA runs trained together over one base (cl.engine.packed, python -m cl.pack)."""

import json

import pytest
import torch
from conftest import make_config

import cl.run
from cl.engine.packed import run_packed
from cl.pack import main as pack

# Every dropout off: then a packed run must equal the same run alone (with dropout the runs share
# one stream of masks and are only statistically alike).
NO_DROPOUT = ("+model.config.hidden_dropout_prob=0", "+model.config.attention_probs_dropout_prob=0",
              "strategy.lora.dropout=0", "trainer.max_epochs=6", "model.pooling=mean", "strategy=lora")  # fmt: skip
RUNS = (("strategy.lora.r=4", "strategy.lora.lr=3e-3"), ("strategy.lora.r=8", "strategy.lora.lr=1e-2"))


def adapters(module, prefix=""):
    """The trained weights (adapters and heads), named as a run alone names them."""
    return {n.replace(prefix, ""): p.detach().clone() for n, p in module.named_parameters()
            if ("lora_" in n and prefix in n) or n.startswith("network.heads.")}  # fmt: skip


def test_packed_runs_equal_the_same_runs_alone(tmp_path):
    alone = []
    for k, run in enumerate(RUNS):
        exp = cl.run.build(make_config(*NO_DROPOUT, *run))
        alone.append((cl.run.execute(exp, str(tmp_path / f"alone{k}")), adapters(exp.module)))
    exps = run_packed([make_config(*NO_DROPOUT, *run) for run in RUNS], [tmp_path / f"packed{k}" for k in range(2)])
    for k, (exp, (res, weights)) in enumerate(zip(exps, alone)):
        assert exp.results.accuracy_matrix == res.accuracy_matrix and exp.results.status == "finished"
        assert exp.results.accuracy_matrix[-1][0] > 0.6  # learnt something: the comparison is not of two no-ops
        packed = adapters(exp.module, f"run{k}_")
        assert packed.keys() == weights.keys()
        for name, w in weights.items():
            torch.testing.assert_close(packed[name], w, rtol=1e-4, atol=1e-5, msg=name)
        stored = json.loads((tmp_path / f"packed{k}" / "results.json").read_text())
        assert stored["accuracy_matrix"] == res.accuracy_matrix and stored["strategy_report"][-1]["packed_runs"] == 2


def test_the_command_writes_a_folder_per_run_and_refuses_what_cannot_share_a_base(tmp_path, capsys):
    out = tmp_path / "packed"
    args = ["experiment=synthetic", "logger=none", "trainer.enable_progress_bar=false", *NO_DROPOUT,
            "trainer.max_epochs=1", "--vary", "strategy.lora.r=4,8", "--out", str(out)]  # fmt: skip
    pack(args)
    for r in (4, 8):
        assert json.loads((out / f"strategy.lora.r={r}" / "results.json").read_text())["status"] == "finished"
    assert "strategy.lora.r=8" in capsys.readouterr().out
    # stopped between the runs' last saves: the other run's finishing proves this one has every task
    stopped = out / "strategy.lora.r=8" / "results.json"
    stopped.write_text(stopped.read_text().replace('"status": "finished"', '"status": "interrupted"'))
    pack(args)
    assert "all 2 runs" in capsys.readouterr().out and json.loads(stopped.read_text())["status"] == "finished"
    with pytest.raises(SystemExit, match="base models differ"):  # a random tiny model: one per seed
        pack(["experiment=synthetic", "strategy=lora", "--vary", "seed=0,1", "--out", str(tmp_path / "s")])
    with pytest.raises(SystemExit, match=r"packing trains LoRA runs .*\['replay'\]"):
        pack(["experiment=synthetic", "strategy=replay", "--vary", "seed=0,1", "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="set model.length_chunks=1"):  # packed runs share one pass
        pack(["experiment=synthetic", "strategy=lora", "model.length_chunks=2", "--vary", "strategy.lora.r=4,8",
              "--out", str(tmp_path / "c")])  # fmt: skip


PACKED = ("strategy=lora", "trainer.max_epochs=2", "model.pooling=mean")  # dropout on: the RNG states must carry over


def stop_at(monkeypatch, where: str, task: int):
    """Stop the packed job at ``task``: before training it, or inside the checkpoint save after it
    (``phase1``: after the first run's new checkpoint; ``phase2``: after the first rename)."""
    import cl.engine.packed as packed

    train, save = packed._train_task, packed.checkpoint.save

    def train_task(exps, rngs, t):
        if where == "train" and t == task:
            raise KeyboardInterrupt("stopped")
        return train(exps, rngs, t)

    def save_checkpoint(out, module, callbacks, done, *args):
        if where == "phase1" and done == task and "packed1" in str(out):
            raise KeyboardInterrupt("stopped between the runs' checkpoints")
        return save(out, module, callbacks, done, *args)

    monkeypatch.setattr(packed, "_train_task", train_task)
    monkeypatch.setattr(packed.checkpoint, "save", save_checkpoint)
    if where == "phase2":
        renames = []

        def replace(self, target):
            # saves after 0, 1, ... tasks rename one file per run: the second run's, after ``task`` tasks
            if self.name == packed.NEXT and len(renames) == 2 * task + 1 and "packed1" in str(self):
                raise KeyboardInterrupt("stopped between the renames")
            renames.append(self)
            return type(self).rename(self, target)

        monkeypatch.setattr(packed.Path, "replace", replace)


def packed_configs():
    return [make_config(*PACKED, *run) for run in RUNS]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The packed job never stopped (one for every way of stopping it)."""
    folder = tmp_path_factory.mktemp("whole")
    return run_packed(packed_configs(), [folder / f"run{k}" for k in range(2)])


@pytest.mark.parametrize("where", ["train", "phase1", "phase2"])
def test_a_stopped_packed_job_resumes_to_the_same_results(tmp_path, monkeypatch, where, whole):
    cfgs = packed_configs
    outs = [tmp_path / f"packed{k}" for k in range(2)]
    with monkeypatch.context() as m:
        stop_at(m, where, 2)
        with pytest.raises(KeyboardInterrupt):
            run_packed(cfgs(), outs)
    stopped = [json.loads((o / "results.json").read_text()) for o in outs]
    assert {s["status"] for s in stopped} == {"interrupted"}
    resumed = run_packed(cfgs(), outs)
    expected_after = 2 if where in ("train", "phase2") else 1  # phase 1 undone: task 2's rows are redone
    for exp, ref in zip(resumed, whole):
        assert exp.results.resumed_after == [expected_after]
        assert exp.results.accuracy_matrix == ref.results.accuracy_matrix  # to the bit
        assert exp.results.status == "finished"
    for k, o in enumerate(outs):
        assert not (o / "checkpoint.pt").exists() and not (o / "checkpoint.next.pt").exists()
        torch.testing.assert_close(adapters(resumed[k].module, f"run{k}_"), adapters(whole[k].module, f"run{k}_"),
                                   rtol=0, atol=0)  # fmt: skip
