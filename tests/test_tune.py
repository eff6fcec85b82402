"""Choosing settings from validation runs (python -m cl.analysis.tune)."""

import json

import pytest
import yaml

from cl.analysis.tune import main


def fake_run(folder, overrides, acc, evaluated_on="validation", status="finished"):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    metrics = {m: acc for m in ("acc", "avg_incremental_acc", "bwt", "fwt", "forgetting", "learning_acc")}
    run = {"status": status, "evaluated_on": evaluated_on, "metrics": metrics}
    (folder / "results.json").write_text(json.dumps(run))


def test_the_best_mean_over_seeds_is_chosen(tmp_path):
    for lr, accs in (("1e-5", [0.5, 0.7]), ("1e-4", [0.65, 0.66]), ("1e-3", [0.2, 0.9])):
        for seed, acc in enumerate(accs):
            fake_run(tmp_path / f"lr{lr}" / f"s{seed}", [f"optimizer.lr={lr}", f"seed={seed}", "logger=none"], acc)
    fake_run(tmp_path / "stopped", ["optimizer.lr=1", "seed=0"], 0.99, status="failed")  # not finished: ignored
    main([str(tmp_path), "--out", str(tmp_path / "choice.yaml")])
    choice = yaml.safe_load((tmp_path / "choice.yaml").read_text())
    assert choice["chosen"] == ["optimizer.lr=1e-4"] and [c["runs"] for c in choice["candidates"]] == [2, 2, 2]
    assert choice["candidates"][0]["acc"] == pytest.approx(0.655)


def test_test_scores_are_refused(tmp_path):
    fake_run(tmp_path / "a", ["optimizer.lr=1e-5"], 0.5, evaluated_on="test")
    with pytest.raises(SystemExit, match="scored on its test split"):
        main([str(tmp_path), "--out", str(tmp_path / "c.yaml")])
