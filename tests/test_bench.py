"""The benchmark's own arithmetic (its timings are never asserted: see python -m cl.analysis.bench)."""

import json
import subprocess
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
    plain = peers.run_script(sys.executable, "plain.py", data, model, "replay", seed=1)
    ours = peers.run_ours(data, "replay", tmp_path / "ours", seed=1)
    assert json.loads((tmp_path / "ours" / "results.json").read_text())["seed"] == 1  # round r runs seed r
    grouped = peers.run_ours(data, "replay", tmp_path / "grouped", peers.FAST)
    for m in (plain, ours, grouped):
        assert 0 <= m["acc"] <= 1 and m["train_s"] > 0 and m["peak_rss_mb"] > 100


def test_import_probe_reads_its_own_peak_not_the_parents():
    from cl.analysis.bench_imports import probe

    ballast = b"1" * (300 * 2**20)  # the parent's peak is over 300 MB; a child must not report it
    small, loaded = probe("import json")
    big, _ = probe("x = b'1' * (200 * 2**20)")
    del ballast
    assert loaded == [] and small < 100 and big > small + 150


def test_the_lean_view_of_site_packages_hides_only_the_named_packages(tmp_path):
    from cl.analysis.bench_imports import probe, site_without

    view = str(site_without(tmp_path, hidden=("scipy",)))
    code = "import importlib.util as u, importlib.metadata as m; import torch, cl.engine.results; " + (
        "assert u.find_spec('scipy') is None; assert m.version('torch'); import scipy"
    )
    with pytest.raises(subprocess.CalledProcessError) as failed:
        probe(code, view)
    assert "No module named 'scipy'" in failed.value.stderr  # neither its spec nor its import is found
    _, loaded = probe("import torch, cl.engine.results", view)  # the project comes through without its .pth
    assert "datasets" in loaded and "scipy" not in loaded


def test_the_table_has_a_row_for_every_measured_ratio():
    from cl.analysis.bench import CHUNKED, STRATEGIES, TIGHT, rows

    costs = {s: {"epoch_s": 10.0, "tokens_per_epoch": 1000.0, "eval_examples_per_s": 150.0,
                 "trained_examples_per_s": 25.0, "peak_rss_mb": 1500.0, "trainable_params": 10, "report": {}}
             for s in STRATEGIES}  # fmt: skip
    costs["distill"]["report"] = {"teacher_seconds": 1.0}
    costs["replay"]["report"] = {"memory_examples": 200, "memory_bytes": 1000}
    costs[CHUNKED["naive"]] |= {"tokens_per_epoch": 840.0}
    for s in TIGHT:
        costs[s]["rounds"] = [0.9, 0.95, 1.0] if s in CHUNKED.values() else [1.1, 1.2, 1.0]
    over = {k: {"ratio": 1.0, "framework_s": 1.0, "plain_s": 1.0, "rounds": [1.0]} for k in ("task", "step")}
    run = {"wall": 100.0, "train": 60.0, "eval": 20.0, "other": 20.0}
    found = {r[0]: r for r in rows(over, {"fused_s": 0.03, "loop_s": 0.12}, costs,
                                   {"fixed": 0.5, "train_dynamic": 0.8, "eval_sorted": 0.95}, run, 1)}  # fmt: skip
    chunked = found["naive epoch, length_chunks=2 / naive epoch"]
    assert chunked[1].startswith("0.950") and "tokens 0.840" in chunked[1] and chunked[3] is True
    assert found["replay epoch, length_chunks=2 / replay epoch"][1].startswith("0.864")


def test_peer_accuracy_is_the_mean_over_the_rounds_seeds_then_each_seed():
    from cl.analysis.bench_peers import accuracy

    assert accuracy([{"acc": 0.6}, {"acc": 0.7}, {"acc": 0.8}]) == "0.700 (0.600 / 0.700 / 0.800)"


def test_peer_speed_rows_hold_each_strategy_to_its_target():
    from cl.analysis.bench_peers import speed_row

    row = speed_row("distill", "ours", {"wall_s": 140.0}, {"wall_s": 100.0})
    assert row[1].startswith("1.40") and row[2] == ">= 1.5" and row[3] is False  # 1.5x on distillation
    assert speed_row("naive", "ours", {"wall_s": 130.0}, {"wall_s": 100.0})[2:] == (">= 1.2", True)
