import pytest
import torch

from cl.run import execute


@pytest.mark.parametrize("selection", ["reservoir", "balanced"])
def test_memory_is_bounded_and_holds_earlier_tasks(build_synthetic, tmp_path, selection):
    exp = build_synthetic("strategy=replay", "strategy.replay.memory_size=20", f"strategy.replay.selection={selection}",
                          "trainer.max_epochs=1")  # fmt: skip
    replay, seen_batches = exp.callbacks[0], []
    original = replay.extend_batch

    def spy(module, batch):
        out = original(module, batch)
        seen_batches.append((module.task_id, len(batch["labels"]), out["task_ids"].tolist()))
        return out

    replay.extend_batch = spy
    res = execute(exp, str(tmp_path))
    assert [r["memory_examples"] for r in res.strategy_report] == [20, 20, 20]
    assert [r["memory_tasks"] for r in res.strategy_report] == [1, 2, 3]
    assert res.strategy_report[-1]["memory_bytes"] < 20 * (16 * 4 + 16)  # token ids, not datasets
    for task_id, n, task_ids in seen_batches:
        if task_id == 0:
            assert len(task_ids) == n  # nothing to replay yet
        else:
            assert len(task_ids) == n + round(0.5 * n)
            assert all(t < task_id for t in task_ids[n:])  # replayed come from earlier tasks
    if selection == "balanced":
        counts = torch.bincount(torch.tensor([ex["task_id"] * 2 + ex["label"] for ex in replay.buffer]))
        assert counts.tolist() == [4, 4, 3, 3, 3, 3]  # 20 slots shared by 6 (task, class) groups


def test_memory_survives_a_state_dict_round_trip(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=replay", "trainer.max_epochs=1")
    execute(exp, str(tmp_path))
    replay = exp.callbacks[0]
    clone = type(replay)(memory_size=replay.memory_size)
    clone.load_state_dict(replay.state_dict())
    assert clone.seen == replay.seen and len(clone.buffer) == len(replay.buffer)
    assert torch.equal(torch.randint(100, (5,), generator=clone.generator),
                       torch.randint(100, (5,), generator=replay.generator))  # fmt: skip


def test_a_merged_batch_is_encoded_as_its_parts_without_extra_padding(build_synthetic):
    exp = build_synthetic()
    module, stream = exp.module.eval(), exp.stream
    short = stream.collate([dict(stream.tasks[0].train[i], row=i) for i in range(4)])
    long_rows = [{"input_ids": list(range(2, 30)), "label": 0, "task_id": 1}] * 2
    merged = stream.merge(short, stream.collate(long_rows))
    assert merged["segments"].tolist() == [4, 2] and merged["rows"].tolist()[4:] == [-1, -1]
    with torch.no_grad():
        together = module.encode(merged)
        apart = torch.cat([module.encode(short), module.encode(stream.collate(long_rows))])
    assert torch.allclose(together, apart, atol=1e-5)


def test_generative_examples_are_replayed_with_their_responses(build_synthetic, tmp_path):
    """A generative task's memory keeps its responses: replaying it while a later task trains
    needs them (and a checkpoint keeps them)."""
    exp = build_synthetic("experiment=synthetic_instruct", "strategy=replay", "strategy.replay.memory_size=20",
                          "trainer.max_epochs=1")  # fmt: skip
    res = execute(exp, str(tmp_path))
    assert res.status == "finished", res.error
    replay = exp.callbacks[0]
    generative = [ex for ex in replay.buffer if "target_ids" in ex]
    assert generative and all(len(ex["target_ids"]) for ex in generative)
    again = type(replay)(memory_size=20)
    again.load_state_dict(replay.state_dict())
    assert again.digest() == replay.digest()
