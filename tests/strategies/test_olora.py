import torch

from cl.run import execute


def lora_weights(module, adapter: str) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if f".{adapter}." in n}


def test_earlier_adapters_stay_frozen_and_all_are_summed(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=olora", "trainer.max_epochs=1")
    olora, ends = exp.module.cl_callbacks[0], []
    original = olora.on_task_end
    olora.on_task_end = lambda m, t, s, d: (ends.append(lora_weights(m, "task0")), original(m, t, s, d))
    res = execute(exp, str(tmp_path))
    assert ends[0] and all(torch.equal(ends[0][k], ends[-1][k]) for k in ends[0])  # task0 untouched later
    backbone = exp.module.network.backbone
    assert backbone.base_model.active_adapters == ["task0", "task1", "task2"]  # no task id: all at once
    assert res.strategy_report[-1]["adapters"] == 3


def test_olora_runs_class_incremental(run_synthetic):
    res = run_synthetic("strategy=olora", "stream.scenario=class", "trainer.max_epochs=1", "~stream.tasks.t2")
    assert res.status == "finished"


def test_the_penalty_keeps_the_new_adapter_orthogonal(build_synthetic, tmp_path):
    overlap = {}
    for weight in (0.0, 50.0):
        exp = build_synthetic("strategy=olora", f"strategy.olora.orthogonal={weight}", "strategy.olora.lr=1e-2",
                              "trainer.max_epochs=3", "~stream.tasks.t2")  # fmt: skip
        res = execute(exp, str(tmp_path / str(weight)))
        pairs = exp.module.cl_callbacks[0].pairs(exp.module)  # task1's A against task0's, every module
        overlap[weight] = float(torch.stack([(a @ b.T).abs().sum() for a, b in pairs]).mean())
        assert res.status == "finished"
    assert overlap[50.0] < 0.5 * overlap[0.0], overlap
