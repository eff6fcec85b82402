"""Every strategy, and the useful pairs, run end to end on the synthetic stream."""

from pathlib import Path

import pytest

STRATEGIES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "configs" / "strategy").glob("*.yaml"))
PAIRS = ["[replay,distill]", "[freeze,replay]", "[low_lr,replay]", "[lora,mc_dropout]", "[replay,mc_dropout]",
         "[lora,distill]", "[freeze,distill]"]  # fmt: skip
FIT_TINY = ["strategy.freeze.layers=1"]  # the tiny test model has two layers
# routing stands in for a task id only class-IL lacks; general data is rehearsed by language models
SCENARIO = {"routed_lora": ["stream.scenario=class"], "general_replay": ["experiment=synthetic_instruct"]}


@pytest.mark.parametrize("strategy", STRATEGIES + PAIRS)
def test_strategy_runs_end_to_end(run_synthetic, strategy):
    extra = [o for o in FIT_TINY if o.split(".")[1] in strategy]
    res = run_synthetic(f"strategy={strategy}", "trainer.max_epochs=1", *extra, *SCENARIO.get(strategy, []))
    assert res.status == "finished" and len(res.accuracy_matrix) == 3
    names = strategy.strip("[]").split(",")
    assert res.strategy == "+".join(n for n in names if n != "naive" or len(names) == 1)


def test_replay_and_distill_cooperate_through_the_contract(build_synthetic, tmp_path):
    """distill finds replay's memory by its type (ExampleMemory), computes the teacher for every memory
    slot, and matches replayed examples by the ``slots`` batch key, current ones by ``rows``."""
    import torch

    from cl.engine.callback import ContinualCallback
    from cl.run import execute
    from tasks.batching import ROWS, SLOTS

    exp = build_synthetic("strategy=[replay,distill]", "strategy.replay.memory_size=12", "trainer.max_epochs=1")
    replay, distill = exp.callbacks
    seen = []
    original = distill.loss_terms

    def spy(module, batch, outputs, terms):
        if distill.teacher_rows is not None:
            seen.append((batch[ROWS].tolist(), batch[SLOTS].tolist()))
        return original(module, batch, outputs, terms)

    distill.loss_terms = spy
    execute(exp, str(tmp_path))
    assert distill.teacher_slots is not None and len(distill.teacher_slots) == len(replay.memory_examples()) == 12
    for rows, slots in seen:  # each example is either current (a row) or replayed (a slot), never both
        assert all((r >= 0) != (s >= 0) for r, s in zip(rows, slots))
        assert any(s >= 0 for s in slots)
    # An attribute named like a memory is not a memory: only the declared type counts.
    exp = build_synthetic("strategy=distill", "trainer.max_epochs=1")

    class LooksLikeMemory(ContinualCallback):
        buffer = [{"input_ids": torch.tensor([1, 2]), "label": 0, "task_id": 0}]

    exp.module.cl_callbacks.append(LooksLikeMemory())
    execute(exp, str(tmp_path / "b"))
    assert exp.callbacks[0].teacher_slots is None
