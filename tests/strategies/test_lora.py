import pytest
import torch

from cl.run import execute

LEARNABLE = ("model.pooling=mean", "trainer.max_epochs=6", "strategy.lora.lr=null")  # the stream's rate


def test_isolation_keeps_the_base_and_earlier_tasks_unchanged(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=lora", *LEARNABLE)
    base = {n: p.detach().clone() for n, p in exp.module.network.backbone.named_parameters()}
    res = execute(exp, str(tmp_path))
    encoder = exp.module.network.backbone
    assert sorted(encoder.peft_config) == ["task0", "task1", "task2"]
    for name, p in encoder.get_base_model().named_parameters():
        if "lora_" not in name:
            key = name.replace(".base_layer", "")
            assert torch.equal(p, base[key]), name
    r = res.accuracy_matrix
    assert r[0][0] > 0.65, r  # learnt (chance 0.5), so "unchanged" is not trivially true
    assert r[0][0] == r[1][0] == r[2][0] and r[1][1] == r[2][1]  # earlier tasks do not move
    assert res.trainable_params[0] < res.total_params / 5


def test_shared_mode_trains_one_adapter(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=lora", "strategy.lora.mode=shared", "trainer.max_epochs=1")
    execute(exp, str(tmp_path))
    assert list(exp.module.network.backbone.peft_config) == ["shared"]


def test_isolation_needs_task_ids(build_synthetic):
    with pytest.raises(ValueError, match="scenario=task"):
        build_synthetic("strategy=lora", "stream.scenario=class")


def test_unknown_target_modules_list_the_models_linear_modules(build_synthetic):
    with pytest.raises(ValueError, match=r"\['nope'\] are not modules.*'query'"):
        build_synthetic("strategy=lora", "strategy.lora.target_modules=[query,nope]")
