import json

import pytest

from cl.report import main


def test_report_tables_the_runs_and_fails_clearly_without_any(run_synthetic, tmp_path, capsys):
    run_synthetic("trainer.max_epochs=1", out=tmp_path / "runs" / "a")
    main([str(tmp_path / "runs"), "--markdown", str(tmp_path / "t.md")])
    table = (tmp_path / "t.md").read_text()
    res = json.loads((tmp_path / "runs" / "a" / "results.json").read_text())
    assert f"| naive | 0 | {res['metrics']['acc']:.3f} |" in table
    assert table == capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no results.json"):
        main([str(tmp_path / "empty")])
