import torch

from cl.run import execute


def test_passes_differ_and_are_averaged(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=mc_dropout", "strategy.mc_dropout.passes=4", "strategy.mc_dropout.p=0.3",
                          "trainer.max_epochs=1")  # fmt: skip
    res = execute(exp, str(tmp_path))
    cb, module = exp.callbacks[0], exp.module.eval()
    batch = exp.stream.collate([exp.stream.tasks[0].test[i] for i in range(8)])
    with torch.no_grad():
        torch.manual_seed(0)
        averaged = cb.predict_proba(module, batch, head=0)
        torch.manual_seed(0)
        cb.passes = 1
        singles = [cb.predict_proba(module, batch, head=0) for _ in range(4)]
    assert not torch.allclose(singles[0], singles[1])  # dropout is active at evaluation
    assert torch.allclose(averaged, torch.stack(singles).mean(0), atol=1e-6)
    assert all(m.training is False for m in module.modules())  # dropout switched back off
    assert set(res.strategy_report[-1]) == {"entropy/t0", "entropy/t1", "entropy/t2"}
    assert all(0 < v <= torch.log(torch.tensor(2.0)) for v in res.strategy_report[-1].values())
