"""Tasks with generated answers on a tiny random Llama (the synthetic_instruct stream: a
classification task, then two generative ones scored by exact match and ROUGE-L)."""

import pytest
import torch

from tasks.prompts import wrap

GEN = ["experiment=synthetic_instruct"]


def test_a_generative_task_learns_and_its_answers_are_kept(run_synthetic):
    res = run_synthetic(*GEN, "~stream.tasks.g2")
    assert res.scores == ["accuracy", "exact_match"]
    assert res.initial_accuracy[1] == 0 and res.accuracy_matrix[1][1] >= 0.25  # exact match rose from 0
    assert len(res.samples) == 3  # the initial evaluation and each task
    sample = res.samples[-1]["g1"][0]
    assert set(sample) == {"prompt", "reference", "output"} and len(sample["reference"].split()) == 2


def test_response_only_loss_equals_the_cross_entropy_of_response_tokens_alone(build_synthetic):
    exp = build_synthetic(*GEN)
    module, task = exp.module.eval(), exp.stream.tasks[1]
    rows = [task.train[i] for i in range(4)]
    batch = exp.stream.collate(rows)
    eos = exp.stream.collate.eos_id
    with torch.no_grad():
        loss = module.task_loss(batch, module(batch))
        terms = []
        for r in rows:  # each sequence alone, no padding: -log p of every response token and the eos
            answer = [*r["target_ids"], eos]
            ids = torch.tensor([[*r["input_ids"], *answer]])
            logp = module.network.backbone(input_ids=ids).logits[0].log_softmax(-1)
            terms += [-logp[ids.shape[1] - len(answer) - 1 + k, tok] for k, tok in enumerate(answer)]
    assert float(loss) == pytest.approx(float(torch.stack(terms).mean()), abs=1e-5)


def test_batched_generation_equals_one_at_a_time(build_synthetic):
    exp = build_synthetic(*GEN, "seed=1")
    module = exp.module.eval()
    torch.manual_seed(0)
    with torch.no_grad():  # make the random model's greedy answers differ between prompts
        for p in module.network.backbone.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    rows = [exp.stream.tasks[1].test[i] for i in range(6)]  # prompts of different lengths
    prompts = module.prompt_ids(exp.stream.collate(rows))
    assert len({len(p) for p in prompts}) > 1
    batched = module.generate(prompts, max_new_tokens=5, cut=False)
    alone = [module.generate([p], max_new_tokens=5, cut=False)[0] for p in prompts]
    assert len({tuple(b) for b in batched}) > 1 and all(len(b) == 5 for b in batched)
    assert batched == alone


def test_scores_and_kinds_are_checked(build_synthetic):
    with pytest.raises(ValueError, match="score must be one of"):
        build_synthetic(*GEN, "stream.tasks.g1.score=bleu")
    with pytest.raises(ValueError, match="type must be one of"):
        build_synthetic(*GEN, "stream.tasks.g1.type=chat")
    with pytest.raises(ValueError, match=r"tasks \['g1', 'g2'\] are generative: they need a causal language model"):
        build_synthetic(*GEN, "model=tiny_bert", "~stream.general", "~stream.rehearsal")
    with pytest.raises(ValueError, match=r"rehearsal data \['filler', 'other', 'r5'\] .* need a causal LM"):
        build_synthetic(*GEN, "model=tiny_bert")


def test_a_torchmetrics_metric_can_score_a_task(run_synthetic):
    score = "{_target_: torchmetrics.text.CharErrorRate}"
    res = run_synthetic(*GEN, "~stream.tasks.g2", f"stream.tasks.g1.score={score}", "trainer.max_epochs=1")
    assert res.scores[1] == {"_target_": "torchmetrics.text.CharErrorRate"} and res.initial_accuracy[1] >= 0


class ChatTokenizer:
    chat_template = "stub"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages) + "<|assistant|>"


def test_prompt_templates():
    assert wrap("plain", "Label it.", None, "classify") == ("Label it.\nText: ", "\nAnswer:")
    assert wrap("plain", "", None, "generate") == ("### Instruction:\n", "\n\n### Response:\n")
    assert wrap("chat", "Summarize.", ChatTokenizer(), "generate") == ("<|user|>Summarize.\n\n", "<|end|><|assistant|>")
    assert wrap("Q: {instruction} {text} A:", "Why?", None, "generate") == ("Q: Why? ", " A:")
    with pytest.raises(ValueError, match="chat template"):
        wrap("chat", "x", object(), "generate")


def test_general_probes_are_scored_beside_the_matrix(run_synthetic):
    res = run_synthetic(*GEN, "~stream.tasks.g2", "trainer.max_epochs=2")
    assert res.general_names == ["filler", "other"] and res.general_kinds == ["perplexity", "accuracy"]
    assert len(res.general) == 3 and all(len(r) == 2 for r in res.general)  # initial + after each task
    first, last = res.general[0], res.general[-1]
    metrics = res.metrics()
    assert metrics["general_drop/filler"] == pytest.approx(last[0] - first[0])  # perplexity: a rise is a loss
    assert metrics["general_drop/other"] == pytest.approx(first[1] - last[1])
    assert "filler" in res.table().splitlines()[0]


@pytest.mark.parametrize("budget", [2**25, 1])  # the whole batch at once, or one row at a time
def test_probe_perplexity_equals_a_direct_computation(build_synthetic, budget):
    exp = build_synthetic(*GEN)
    module, probe = exp.module.eval(), exp.stream.probes[0]
    j = len(exp.stream.tasks)
    rows = [probe.test[i] for i in range(5)]
    with torch.no_grad():
        module.perplexity_step(exp.stream.collate(rows), j, logits_budget=budget)
        got = float(module.accuracy[j].compute())
        nll, count = 0.0, 0
        for r in rows:  # each text alone, no padding
            ids = torch.tensor([r["input_ids"]])
            logp = module.network.backbone(input_ids=ids).logits[0].log_softmax(-1)
            nll -= sum(float(logp[t, ids[0, t + 1]]) for t in range(ids.shape[1] - 1))
            count += ids.shape[1] - 1
    assert got == pytest.approx(float(torch.exp(torch.tensor(nll / count))), rel=1e-4)
