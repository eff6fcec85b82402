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


def test_an_earlier_tasks_unchanged_adapter_is_not_scored_again_and_nothing_differs(build_synthetic, tmp_path, caplog):
    # Isolation: after task t the earlier tasks' base, adapters and heads are byte-identical, so their
    # scores are kept instead of recomputed; the run must not differ in anything from one that scores
    # everything (same matrix, same weights: the random draws of the skipped loaders are kept too).
    runs = {}
    for skip in (True, False):
        exp = build_synthetic("strategy=lora", "trainer.max_epochs=1")
        exp.settings.skip_unchanged_evaluation = skip
        caplog.clear()
        with caplog.at_level("INFO", logger="cl.engine.loop"):
            res = execute(exp, str(tmp_path / str(skip)))
        skipped = [r.getMessage() for r in caplog.records if "not scored again" in r.getMessage()]
        runs[skip] = res, {n: p.detach().clone() for n, p in exp.module.named_parameters()}, skipped
    (a, wa, skipped), (b, wb, none) = runs[True], runs[False]
    assert (
        skipped
        == [
            "tasks [0] not scored again: nothing their predictions depend on changed",
            "tasks [0, 1] not scored again: nothing their predictions depend on changed",
        ]
        and not none
    )
    assert a.accuracy_matrix == b.accuracy_matrix and a.initial_accuracy == b.initial_accuracy
    assert wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)
