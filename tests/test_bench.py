"""The benchmark's own arithmetic (its timings are never asserted: see python -m cl.analysis.bench)."""

import sys

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


@pytest.mark.slow
def test_peer_runs_on_tiny_copies_of_the_tasks(tmp_path, monkeypatch):
    """The whole-run comparison's pieces: the exported tasks, the plain loop and this framework on
    them (real model and data, a few examples per class)."""
    import cl.analysis.bench_peers as peers

    monkeypatch.setattr(peers, "SIZES", {"news": (2, 1), "sentiment": (3, 2), "subjectivity": (3, 2), "tweets": (1, 1)})
    data = peers.export(tmp_path / "data")
    assert len((data / "tweets_train.csv").read_text().splitlines()) == 1 + 16  # header + one per outlet
    model = peers.model_folder()
    plain = peers.run_script(sys.executable, "plain.py", data, model, "replay")
    ours = peers.run_ours(data, "replay", tmp_path / "ours")
    for m in (plain, ours):
        assert 0 <= m["acc"] <= 1 and m["train_s"] > 0 and m["peak_rss_mb"] > 100


def test_import_probe_reads_its_own_peak_not_the_parents():
    from cl.analysis.bench_imports import probe

    ballast = b"1" * (300 * 2**20)  # the parent's peak is over 300 MB; a child must not report it
    small, loaded = probe("import json")
    big, _ = probe("x = b'1' * (200 * 2**20)")
    del ballast
    assert loaded == [] and small < 100 and big > small + 150
