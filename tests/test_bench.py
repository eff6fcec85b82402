"""The benchmark's own arithmetic (its timings are never asserted: see python -m cl.analysis.bench)."""

import pytest

from cl.analysis.bench import padding, table


def test_padding_shares_on_the_synthetic_stream(build_synthetic):
    exp = build_synthetic()
    pad = padding(exp, fixed=32)
    lengths = [n for t in exp.stream.tasks for split in (t.train, t.test) for n in split["length"]]
    assert pad["fixed"] == pytest.approx(sum(lengths) / (32 * len(lengths)))
    assert pad["fixed"] < pad["train_dynamic"] <= 1 and pad["train_dynamic"] < pad["eval_sorted"] <= 1


def test_table_marks_failures():
    out = table([("a", "1.0", "<= 2", True), ("b", "3.0", "<= 2", False), ("c", "x", "", None)])
    assert "| a | 1.0 | <= 2 | yes |" in out and "| b | 3.0 | <= 2 | NO |" in out and "| c | x |  |  |" in out


def test_benchmarks_find_the_configs():
    from pathlib import Path

    from cl.analysis.timing import CONFIGS

    assert (Path(CONFIGS) / "config.yaml").is_file()
