"""Every peft method of strategies/adapters.py (strategy=lora), isolated per task and shared, on the tiny models."""

import pytest

from cl.run import execute

LLAMA = ["experiment=synthetic_lm", "trainer.max_epochs=2", "strategy=lora"]
BERT = ["trainer.max_epochs=2", "strategy=lora"]
PEFT_TYPES = {"lora": "LORA", "adalora": "ADALORA", "ia3": "IA3", "prompt": "PROMPT_TUNING",
              "prefix": "PREFIX_TUNING", "ptuning": "P_TUNING"}  # fmt: skip


def trainable(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "model, method",
    [(LLAMA, m) for m in ("lora", "adalora", "ia3", "prompt", "prefix", "ptuning")]
    + [(BERT, m) for m in ("lora", "adalora", "ia3", "prompt")],
)
def test_method_trains_only_its_adapters(build_synthetic, tmp_path, model, method):
    exp = build_synthetic(*model, f"strategy.lora.method={method}")
    base = {n: p.detach().clone() for n, p in exp.module.network.backbone.named_parameters()}
    res = execute(exp, str(tmp_path))
    assert res.status == "finished"
    # The count of trainable parameters is reported per task: adapters (+ heads), far below the model.
    assert 0 < res.trainable_params[0] < res.total_params / 5, res.trainable_params
    encoder = exp.module.network.backbone
    assert encoder.active_peft_config.peft_type.name == PEFT_TYPES[method]
    after = {n.replace(".base_layer", ""): p for n, p in encoder.get_base_model().named_parameters()}
    for name, before in base.items():  # the pretrained weights never move
        assert after[name].equal(before), name
    assert list(encoder.peft_config) == ["task0", "task1", "task2"]


def test_isolation_keeps_earlier_tasks_on_the_lm(build_synthetic, tmp_path):
    exp = build_synthetic(*LLAMA, "trainer.max_epochs=4")
    res = execute(exp, str(tmp_path))
    for j in range(2):  # later tasks train other adapters: task j's accuracy stays where it was
        assert res.accuracy_matrix[-1][j] == res.accuracy_matrix[j][j]


def test_prefix_tuning_needs_a_causal_lm(build_synthetic):
    with pytest.raises(ValueError, match="needs a causal language model"):
        build_synthetic(*BERT, "strategy.lora.method=prefix")
