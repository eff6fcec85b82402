import pytest
import torch

from cl.run import execute


def test_no_teacher_on_the_first_task_then_a_cached_one(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=distill", "trainer.max_epochs=2")
    distill, calls = exp.callbacks[0], []
    original = distill.teacher_logits

    def counted(module, examples):
        out = original(module, examples)
        calls.append((module.task_id, module.training, out.requires_grad))
        return out

    distill.teacher_logits = counted
    res = execute(exp, str(tmp_path))
    assert res.strategy_report[0]["kd_mean"] == 0  # task 0: no teacher, no KD term
    assert all(r["kd_mean"] > 0 for r in res.strategy_report[1:])
    # Once per task (not per epoch or step), in eval mode, without gradients.
    assert calls == [(1, False, False), (2, False, False)]
    assert distill.teacher_rows.shape == (len(exp.stream.tasks[2].train), 4)  # two earlier 2-class heads


def test_teacher_logits_are_the_previous_model_and_kd_vanishes_for_it(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=distill", "trainer.max_epochs=1")
    execute(exp, str(tmp_path))
    distill, module = exp.callbacks[0], exp.module
    batch = exp.stream.collate([exp.stream.tasks[2].train[i] | {"row": i} for i in range(4)])
    distill.teacher_rows = distill.teacher_logits(module.eval(), exp.stream.tasks[2].train.add_column(
        "row", list(range(len(exp.stream.tasks[2].train)))))  # fmt: skip
    with torch.no_grad():
        kd = distill.loss_terms(module, batch, module(batch), {"ce": torch.tensor(1.0)})["kd"]
    assert kd == pytest.approx(0, abs=1e-6)  # a model distilled from itself pays nothing


def test_bad_alpha_and_temperature_are_rejected(build_synthetic):
    with pytest.raises(Exception, match="alpha"):
        build_synthetic("strategy=distill", "strategy.distill.alpha=1.5")
    with pytest.raises(Exception, match="temperature"):
        build_synthetic("strategy=distill", "strategy.distill.temperature=0")
