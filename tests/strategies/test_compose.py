"""Every strategy, and the useful pairs, run end to end on the synthetic stream."""

from pathlib import Path

import pytest

STRATEGIES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "configs" / "strategy").glob("*.yaml"))
PAIRS = ["[replay,distill]", "[freeze,replay]", "[low_lr,replay]", "[lora,mc_dropout]", "[replay,mc_dropout]",
         "[lora,distill]", "[freeze,distill]"]  # fmt: skip
FIT_TINY = ["strategy.freeze.layers=1"]  # the tiny test model has two layers


@pytest.mark.parametrize("strategy", STRATEGIES + PAIRS)
def test_strategy_runs_end_to_end(run_synthetic, strategy):
    extra = [o for o in FIT_TINY if o.split(".")[1] in strategy]
    res = run_synthetic(f"strategy={strategy}", "trainer.max_epochs=1", *extra)
    assert res.status == "finished" and len(res.accuracy_matrix) == 3
    names = strategy.strip("[]").split(",")
    assert res.strategy == "+".join(n for n in names if n != "naive" or len(names) == 1)
