"""Choosing settings from validation runs (python -m cl.analysis.tune)."""

import contextlib
import json
from pathlib import Path

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


def test_every_strategy_declares_a_search_space():
    from cl.tune import CONFIGS, search_space

    for path in sorted((CONFIGS / "strategy").glob("*.yaml")):
        space = search_space([f"strategy={path.stem}"])
        assert space and all(len(v) >= 2 for v in space.values()), path.name


def test_a_reference_point_is_tuned_on_the_score_it_serves():
    from cl.engine.build import build_callbacks
    from cl.tune import declared_metric, strategies

    assert declared_metric(["strategy=single_task"]) == "learning_acc"  # its diagonal, for intransigence
    assert declared_metric(["strategy=naive"]) == declared_metric(["strategy=replay"]) == "acc"
    assert build_callbacks({"s": strategies(["strategy=single_task"])[0]})  # not passed to the callback


def test_trials_take_the_grid_or_a_seeded_sample_of_the_same_budget():
    from cl.tune import search_space, trials

    space = search_space(["strategy=distill"])  # 3 rates x 3 alphas x 3 temperatures
    drawn = trials(space, 6)
    assert len(drawn) == 6 and len({tuple(p.values()) for p in drawn}) == 6 and drawn == trials(space, 6)
    assert len(trials(space, 100)) == 27  # no more than the grid
    assert "optimizer.lr" not in search_space(["strategy=distill", "optimizer.lr=1e-4"])  # given: not searched


def test_tune_runs_trials_on_validation_and_writes_the_choice(tmp_path, capsys):
    from cl.tune import main as tune

    out = tmp_path / "naive"
    args = ["experiment=synthetic", "logger=none", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
            "~stream.tasks.t2"]  # fmt: skip
    tune([*args, "--trials", "2", "--extend", "0", "--out", str(out)])
    choice = yaml.safe_load((out / "choice.yaml").read_text())
    assert len(choice["candidates"]) == 2 and choice["chosen"][0].startswith("optimizer.lr=")  # 2 of naive's 5
    for k in (0, 1):
        run = json.loads((out / f"trial{k}" / "results.json").read_text())
        assert run["evaluated_on"] == "validation" and run["status"] == "finished"
    best = max(choice["candidates"], key=lambda c: c["acc"])
    assert choice["chosen"] == best["overrides"]
    log = (out / "trial0" / "run.log").stat().st_mtime
    tune([*args, "--trials", "2", "--extend", "0", "--out", str(out)])  # again: no trial runs again, the same choice
    assert (out / "trial0" / "run.log").stat().st_mtime == log
    assert yaml.safe_load((out / "choice.yaml").read_text())["chosen"] == choice["chosen"]
    tune(["--print", str(out / "choice.yaml")])
    assert capsys.readouterr().out.strip().endswith(choice["chosen"][0])


def test_a_choice_at_the_edge_of_the_grid_is_followed_past_it():
    from cl.tune import beyond, extension, search_space, trials

    assert beyond([5e-5, 1e-4, 2e-4], "low") == 2.5e-5 and beyond([5e-5, 1e-4, 2e-4], "high") == 4e-4  # rates
    assert beyond([0.3, 0.5, 0.7], "high") == 0.9 and beyond([4, 8, 16], "high") == 32  # weights, sizes
    assert beyond(["a", "b"], "low") is None
    space = search_space(["strategy=replay"])  # lr 5e-5, 1e-4, 2e-4 x ratio 0.25, 0.5, 1.0
    tried = trials(space, 4)
    step = extension(space, tried, ["optimizer.lr=0.0002", "strategy.replay.ratio=1.0"])
    assert step == {"optimizer.lr": 4e-4, "strategy.replay.ratio": 1.0}
    further = extension(space, [*tried, step], ["optimizer.lr=0.0004", "strategy.replay.ratio=1.0"])
    assert further["optimizer.lr"] == 8e-4
    # back at 2e-4 (4e-4 was worse): the rate is no longer at an edge, so the ratio is stepped next
    assert extension(space, [*tried, step], ["optimizer.lr=0.0002", "strategy.replay.ratio=1.0"]) == {
        "optimizer.lr": 2e-4,
        "strategy.replay.ratio": 2.0,
    }
    assert extension(space, tried, ["optimizer.lr=0.0001", "strategy.replay.ratio=0.5"]) is None  # inside


def fake_tuning(monkeypatch, out, stop_at=None):
    """cl.tune with trials that pretend to run (the highest rate scoring best, so extensions follow);
    records each trial's rate and whether choice.yaml existed meanwhile; ``stop_at``: the trial killed."""
    import subprocess

    import cl.tune

    seen, real_run = [], subprocess.run

    def run(cmd, **kw):
        if "cl.run" not in cmd:
            return real_run(cmd, **kw)  # the choice (cl.analysis.tune)
        folder = Path([c for c in cmd if c.startswith("hydra.run.dir=")][0].split("=", 1)[1])
        lr = [c for c in cmd if c.startswith("optimizer.lr=")][0]
        seen.append((lr, (out / "choice.yaml").exists()))
        status = "interrupted" if len(seen) - 1 == stop_at else "finished"
        if folder.exists():  # a resumed trial
            import shutil

            shutil.rmtree(folder)
        fake_run(folder, [lr], float(lr.split("=")[1]), status=status)
        if status == "interrupted":
            raise KeyboardInterrupt  # the tuning killed mid-trial
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(cl.tune.subprocess, "run", run)
    with contextlib.suppress(KeyboardInterrupt):
        cl.tune.main(["experiment=synthetic", "--trials", "2", "--extend", "2", "--out", str(out)])
    return seen


def test_choice_yaml_appears_only_when_the_extension_trials_are_done(tmp_path, monkeypatch):
    # A final run started beside a tuning (the study's two lanes) waits for choice.yaml: it must not
    # exist while an extension trial may still change the choice, nor survive from an earlier tuning.
    out = tmp_path / "naive"
    out.mkdir()
    (out / "choice.yaml").write_text("chosen: [optimizer.lr=1.0]\n")  # from before: stale until re-chosen
    seen = fake_tuning(monkeypatch, out)
    assert len(seen) == 4 and not any(exists for _, exists in seen)  # 2 trials + 2 steps past the highest rate
    choice = yaml.safe_load((out / "choice.yaml").read_text())
    best = max(choice["candidates"], key=lambda c: c["acc"])
    assert choice["chosen"] == best["overrides"] and len(choice["candidates"]) == 4
    assert not (out / "choice.partial.yaml").exists()


def test_a_stopped_tuning_resumes_its_extension_where_it_stopped(tmp_path, monkeypatch):
    whole = [lr for lr, _ in fake_tuning(monkeypatch, tmp_path / "whole")]
    stopped = [lr for lr, _ in fake_tuning(monkeypatch, tmp_path / "stopped", stop_at=3)]  # in the 2nd step
    assert stopped == whole and not (tmp_path / "stopped" / "choice.yaml").exists()
    resumed = [lr for lr, _ in fake_tuning(monkeypatch, tmp_path / "stopped")]
    assert resumed == [whole[3]]  # the finished trials run no process; the stopped step runs again, no new one
    chosen = [yaml.safe_load((tmp_path / d / "choice.yaml").read_text())["chosen"] for d in ("whole", "stopped")]
    assert chosen[0] == chosen[1] == [whole[3]]
