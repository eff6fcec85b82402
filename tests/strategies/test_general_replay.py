import pytest

# A probe of the rehearsed kind of data (the same key -> response rule, other sequences: seed 1).
PROBE = (
    "+stream.general.g5={type: generate, score: exact_match, max_new_tokens: 4, source: "
    "{_target_: tasks.synthetic.response_task, task_index: 5, seed: 1}, test_examples: 32}"
)


def test_rehearsed_general_data_is_trained_and_kept(run_synthetic, tmp_path):
    naive = run_synthetic("experiment=synthetic_instruct", PROBE, out=tmp_path / "naive")
    mixed = run_synthetic("experiment=synthetic_instruct", PROBE, "strategy=general_replay",
                          "strategy.general_replay.ratio=0.5", out=tmp_path / "mixed")  # fmt: skip
    probe = naive.general_names.index("g5")
    assert mixed.general[-1][probe] > naive.general[-1][probe] + 0.3, (naive.general, mixed.general)
    # 16 + 8 rows a step; each task's data trained for 12 epochs
    drawn = [r["general_examples_trained"] for r in mixed.strategy_report]
    assert drawn[0] > 0 and drawn == sorted(drawn)
    assert mixed.accuracy_matrix[0][0] > 0.8  # the stream's own task is still learnt


def test_general_replay_needs_rehearsal_data_and_a_language_model(run_synthetic):
    with pytest.raises(ValueError, match="stream.rehearsal"):
        run_synthetic("experiment=synthetic_lm", "strategy=general_replay")
    with pytest.raises(ValueError, match="causal language model"):
        run_synthetic("strategy=general_replay")
