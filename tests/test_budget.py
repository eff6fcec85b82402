import json
from pathlib import Path

import pytest

from cl.analysis.budget import main, progress


def put(root: Path, sub: str, seconds: float, status: str = "finished") -> None:
    (root / sub).mkdir(parents=True)
    run = {"status": status, "train_seconds": [seconds], "eval_seconds": [0.0], "initial_eval_seconds": 0.0,
           "setup_seconds": {"model": 0.0}}  # fmt: skip
    (root / sub / "results.json").write_text(json.dumps(run))


def study(root: Path) -> Path:
    root.mkdir()
    (root / "jobs.txt").write_text("tune naive\nfinal naive task [1,0]\nfinal naive class [1,0]\n")
    return root


def test_progress_counts_finished_units_and_projects_from_the_paired_study(tmp_path):
    old, new = study(tmp_path / "old"), study(tmp_path / "new")
    for k, s in enumerate((100, 200)):
        put(old, f"tuning/naive/trial{k}", s)
    put(old, "task/naive/order1-0/seed0", 1000)
    put(new, "tuning/naive/trial0", 300)  # 3x its counterpart
    put(new, "tuning/naive/trial1", 9999, status="running")  # unfinished: counts as not done
    put(new, "tuning/naive/trial2", 600)  # an extension trial the old study lacks: counted, unpaired
    summary = progress(new, old, trials=2, seeds=2)
    tune, final, unpaired = summary["jobs"]
    assert (tune["finished"], tune["planned"], final["finished"], final["planned"]) == (2, 3, 0, 2)
    assert summary["hours"] == pytest.approx(900 / 3600)
    assert summary["ratio"] == pytest.approx(3.0) and tune["ratio"] == pytest.approx(3.0)
    # left: trial1 (200 there), seed0 (1000 there) and seed1 (no counterpart: the job's mean, 1000), x3
    assert summary["projected_hours"] == pytest.approx((900 + 3 * 2200) / 3600)
    assert summary["unprojected"] == unpaired["planned"] == 2  # a job the old study never ran
    (new / "tuning/naive/choice.yaml").write_text("{}")  # complete: what ran is all there is
    assert progress(new, old, trials=4, seeds=2)["jobs"][0]["planned"] == 3


def test_without_a_plan_the_error_names_the_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert f"{tmp_path}/jobs.txt not found" in capsys.readouterr().err


def test_a_missing_study_to_project_from_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(study(tmp_path / "new")), "--against", str(tmp_path / "typo")])
    assert f"--against {tmp_path}/typo is not a folder" in capsys.readouterr().err


def test_a_damaged_or_half_written_results_file_is_an_unfinished_unit(tmp_path):
    new = study(tmp_path / "new")
    (new / "tuning/naive/trial0").mkdir(parents=True)
    (new / "tuning/naive/trial0/results.json").write_text('{"status": "fini')  # killed mid-write
    put(new, "tuning/naive/trial1", 100)
    assert progress(new, None, trials=2, seeds=1)["jobs"][0]["finished"] == 1
