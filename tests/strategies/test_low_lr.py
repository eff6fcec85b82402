import pytest

from cl.run import execute


def test_layerwise_rates_decay_towards_the_embeddings(build_synthetic, tmp_path):
    lr, decay, task_decay, head_lr = 1e-3, 0.5, 0.1, 3e-3
    exp = build_synthetic(
        "strategy=low_lr", f"strategy.low_lr.lr={lr}", f"strategy.low_lr.layer_decay={decay}",
        f"strategy.low_lr.task_decay={task_decay}", f"strategy.low_lr.head_lr={head_lr}", "trainer.max_epochs=1",
    )  # fmt: skip
    res = execute(exp, str(tmp_path))
    rates = exp.callbacks[0].rates  # as set for the last task (task 2)
    base = lr * task_decay**2
    assert rates["heads.0.weight"] == rates["heads.2.bias"] == head_lr  # new heads: their own rate
    assert rates["backbone.pooler.dense.weight"] == pytest.approx(base)
    assert rates["backbone.encoder.layer.1.attention.self.query.weight"] == pytest.approx(base)  # top block
    assert rates["backbone.encoder.layer.0.attention.self.query.weight"] == pytest.approx(base * decay)
    assert rates["backbone.embeddings.word_embeddings.weight"] == pytest.approx(base * decay**2)
    assert res.strategy_report[0]["lr_top"] == pytest.approx(lr)
    assert res.strategy_report[0]["lr_bottom"] == pytest.approx(lr * decay**2)


def test_bad_rates_are_rejected(build_synthetic):
    with pytest.raises(Exception, match="lr must be > 0"):
        build_synthetic("strategy=low_lr", "strategy.low_lr.lr=-1")
