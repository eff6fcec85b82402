import json

import pytest

from cl.analysis.convergence import main, tally


def put(root, name, strategy, validation, status="finished"):
    (root / name).mkdir(parents=True)
    run = {"status": status, "strategy": strategy, "config": {"trainer": {"max_epochs": 3}}, "validation": validation,
           "task_names": [f"task{k}" for k in range(len(validation))]}  # fmt: skip
    (root / name / "results.json").write_text(json.dumps(run))


def test_tally_separates_early_stops_runs_to_the_cap_and_bests_at_the_cap(tmp_path, capsys):
    stopped = {"curve": [0.5, 0.7, 0.6], "chosen": 1, "epochs": 3}  # ran the cap, best before it
    rising = {"curve": [0.5, 0.6, 0.7], "chosen": 2, "epochs": 3}  # best at the cap: may still be learning
    early = {"curve": [0.8, 0.7], "chosen": 0, "epochs": 2}  # early stopping fired
    put(tmp_path, "a", "naive", [stopped, rising, None])  # None: a task that trained nothing
    put(tmp_path, "b", "replay", [early])
    put(tmp_path, "c", "replay", [rising], status="running")  # unfinished: not counted
    counts = tally([json.loads(p.read_text()) for p in tmp_path.rglob("results.json")])
    assert counts["naive"] == {"tasks": 2, "ran_cap": 2, "at_cap": 1, "mean_epoch": 2.5}
    assert counts["replay"] == {"tasks": 1, "ran_cap": 0, "at_cap": 0, "mean_epoch": 1.0}
    assert counts["all"]["tasks"] == 3 and counts["all"]["at_cap"] == 1
    assert counts["all"]["mean_epoch"] == pytest.approx(2.0)
    main([str(tmp_path)])
    assert capsys.readouterr().out.splitlines()[-1] == "| all | 3 | 2 | 1 | 2.0 |"


def test_runs_without_validation_are_an_error_that_says_what_to_set(tmp_path):
    put(tmp_path, "a", "naive", [])
    with pytest.raises(SystemExit, match="validation_fraction"):
        main([str(tmp_path)])
