import pytest
import torch

from cl.run import execute


def snapshot(module):
    return {n: p.detach().clone() for n, p in module.network.named_parameters()}


def test_frozen_weights_stay_bit_identical(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=freeze", "strategy.freeze.layers=1", "trainer.max_epochs=1")
    before = snapshot(exp.module)
    res = execute(exp, str(tmp_path))
    after = snapshot(exp.module)
    frozen = exp.callbacks[0].frozen
    assert any("embeddings" in n for n in frozen) and any(".layer.0." in n for n in frozen)
    assert not any(".layer.1." in n for n in frozen)
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    top = "backbone.encoder.layer.1.output.dense.weight"
    assert not torch.equal(before[top], after[top])  # the unfrozen layer did train
    trainable = sum(p.numel() for n, p in exp.module.network.named_parameters() if n not in frozen)
    assert res.trainable_params == [trainable] * 3 and trainable < res.total_params


def test_heads_only_trains_only_the_heads(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=freeze", "strategy.freeze.heads_only=true", "trainer.max_epochs=1")
    res = execute(exp, str(tmp_path))
    assert res.trainable_params[0] == sum(p.numel() for p in exp.module.network.heads.parameters())


def test_freezing_more_layers_than_exist_fails_at_build(build_synthetic):
    with pytest.raises(ValueError, match="2 layers"):
        build_synthetic("strategy=freeze", "strategy.freeze.layers=5")
