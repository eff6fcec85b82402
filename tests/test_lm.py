"""Causal language models: tasks in generative form on a tiny random Llama (synthetic_lm stream)."""

import pytest
import torch
from conftest import make_config

import cl.run

LM = ["experiment=synthetic_lm"]


def test_collate_puts_every_answer_at_the_end(build_synthetic):
    exp = build_synthetic(*LM)
    rows = [exp.stream.tasks[1].train[i] for i in range(4)]
    batch = exp.stream.collate(rows)
    for i, r in enumerate(rows):
        answer = [*exp.stream.collate.prompts[1].answers[r["label"]], exp.stream.collate.eos_id]
        n = len(answer)
        assert batch["input_ids"][i, -n:].tolist() == answer and batch["answer_lengths"][i] == n
        real = batch["attention_mask"][i].bool()
        assert batch["input_ids"][i][real].tolist() == [*r["input_ids"], *answer]  # left padding only
        assert real[-1] and (not real[0] or real.all())


def test_ranking_equals_the_log_likelihood_of_each_answer_alone(build_synthetic):
    exp = build_synthetic(*LM)
    module = exp.module.eval()
    rows = [exp.stream.tasks[1].test[i] for i in range(3)]  # answers of one and two tokens
    batch = exp.stream.collate(rows)
    with torch.no_grad():
        probs = module.class_probs(batch, head=1)
        for i, r in enumerate(rows):
            scores = []
            for answer in exp.stream.collate.prompts[1].answers:
                ids = torch.tensor([[*r["input_ids"], *answer]])
                logp = module.network.backbone(input_ids=ids).logits[0].log_softmax(-1)
                n = len(answer)
                scores.append(sum(logp[ids.shape[1] - n - 1 + k, answer[k]] for k in range(n)))
            assert probs[i].tolist() == pytest.approx(torch.stack(scores).softmax(-1).tolist(), abs=1e-5)


PREFIX = ["+stream.tasks.t1.prefix_ids=[140,141,142]", "+stream.tasks.t1.suffix_ids=[143]"]


@pytest.mark.parametrize("prompt", [[], PREFIX])
def test_ranking_with_a_shared_prompt_cache_equals_ranking_in_full(build_synthetic, prompt):
    """The prompt's KV cache is shared by every candidate answer, and a prefix common to the task's
    prompts (a chat template, an instruction) computed once for the batch, padded after it."""
    exp = build_synthetic(*LM, "seed=2", *prompt)
    module = exp.module.eval()
    batch = exp.stream.collate([exp.stream.tasks[1].test[i] for i in range(8)])
    assert batch["attention_mask"].float().mean() < 1  # rows of different lengths: padding to skip
    with torch.no_grad():
        cached = module.class_probs(batch, head=1)
        full = module.class_probs_in_full(module.prompt_ids(batch), module.candidates(1))
    assert torch.allclose(cached, full, atol=1e-5)


def test_loss_is_the_cross_entropy_of_answer_tokens_only(build_synthetic):
    exp = build_synthetic(*LM)
    module, rows = exp.module.eval(), [exp.stream.tasks[1].train[i] for i in range(4)]
    batch = exp.stream.collate(rows)
    with torch.no_grad():
        loss = module.task_loss(batch, module(batch))
        terms = []
        for r in rows:  # each sequence alone, no padding: -log p of every answer token and the eos
            answer = [*exp.stream.collate.prompts[1].answers[r["label"]], exp.stream.collate.eos_id]
            ids = torch.tensor([[*r["input_ids"], *answer]])
            logp = module.network.backbone(input_ids=ids).logits[0].log_softmax(-1)
            terms += [-logp[ids.shape[1] - len(answer) - 1 + k, tok] for k, tok in enumerate(answer)]
    assert float(loss) == pytest.approx(float(torch.stack(terms).mean()), abs=1e-5)


@pytest.mark.parametrize("evaluation", ["rank", "generate"])
def test_naive_learns_each_task_in_generative_form(run_synthetic, evaluation):
    res = run_synthetic(*LM, f"model.evaluation={evaluation}")
    diagonal = [res.accuracy_matrix[i][i] for i in range(3)]
    assert min(diagonal) >= 0.8, res.accuracy_matrix


@pytest.mark.parametrize(
    "strategy",
    ["replay", "distill", "[replay,distill]", "low_lr", "freeze", "mc_dropout", "lora", "joint"],
)
def test_strategies_run_on_a_causal_lm(run_synthetic, strategy):
    extra = ["strategy.freeze.layers=1"] if strategy == "freeze" else []
    res = run_synthetic(*LM, f"strategy={strategy}", "trainer.max_epochs=2", *extra)
    assert res.status == "finished" and len(res.accuracy_matrix) == 3
    if "distill" in strategy:
        assert all(r["kd_mean"] > 0 for r in res.strategy_report[1:])


def test_mc_dropout_uses_llama_attention_dropout(build_synthetic):
    exp = build_synthetic(*LM, "strategy=mc_dropout")
    mc, module = exp.callbacks[0], exp.module.eval()
    mc.on_task_start(module, 0, exp.stream, None)
    attention = [m for m in module.modules() if hasattr(m, "attention_dropout")]
    assert attention and all(m.attention_dropout == 0.1 for m in attention)  # Llama has no nn.Dropout
    batch = exp.stream.collate([exp.stream.tasks[0].test[i] for i in range(8)])
    with torch.no_grad():
        assert not torch.equal(mc.predict_proba(module, batch, 0), mc.predict_proba(module, batch, 0))
        assert torch.equal(module.class_probs(batch, 0), module.class_probs(batch, 0))  # eval: deterministic


def test_class_incremental_ranks_every_class_of_the_stream(run_synthetic):
    res = run_synthetic(*LM, "stream.scenario=class", "trainer.max_epochs=2")
    assert res.status == "finished" and res.accuracy_matrix[0][0] > 0.5


def test_qlora_on_cpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        cl.run.build(make_config(*LM, "+model.quantization=nf4", "strategy=lora"))


def test_gradient_checkpointing_on_a_causal_lm_trains_the_same(run_synthetic, tmp_path):
    plain = run_synthetic(*LM, "trainer.max_epochs=2", out=tmp_path / "a")
    ckpt = run_synthetic(*LM, "trainer.max_epochs=2", "model.gradient_checkpointing=true", out=tmp_path / "b")
    assert plain.accuracy_matrix == ckpt.accuracy_matrix
