import json
import math
import sys
from pathlib import Path

import pytest

from cl.analysis.inference import t_interval
from cl.analysis.report import fmt, load_runs, main, summarize

ROOT = Path(__file__).resolve().parents[1]


def fake_run(strategy: str, seed: int, order: list[int] | None, acc: float, forgetting: float) -> dict:
    return {
        "stream": "s", "strategy": strategy, "seed": seed, "status": "finished", "completed_tasks": 2,
        "config": {"stream": {"order": order}}, "task_names": ["a", "b"],
        "accuracy_matrix": [[acc, 0.5], [acc - forgetting, acc]], "train_seconds": [1.0, 2.0],
        "trainable_params": [10, 10], "peak_memory": {"rss_mb": 100.0}, "initial_eval_seconds": 0.1,
        "eval_seconds": [0.1, 0.1],
        "metrics": {"acc": acc, "avg_incremental_acc": acc, "bwt": -forgetting, "fwt": 0.0,
                    "forgetting": forgetting, "learning_acc": acc},
    }  # fmt: skip


def write(root: Path, runs: list[dict]) -> None:
    for r in runs:
        folder = root / r["strategy"] / str(r["config"]["stream"]["order"]) / f"seed{r['seed']}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(r))


def test_mean_ci_uses_student_t():
    mean, half, n = t_interval([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-4)
    assert math.isnan(t_interval([5.0])[1])


def test_paired_differences_cancel_what_seeds_share(tmp_path):
    # Each seed moves both strategies alike: the raw means overlap, the paired difference does not.
    runs = []
    for seed, shift in enumerate([0.0, 0.2, -0.2, 0.1]):
        for order in ([0, 1], [1, 0]):
            runs.append(fake_run("naive", seed, order, 0.5 + shift, 0.3))
            runs.append(fake_run("replay", seed, order, 0.55 + shift, 0.1))
    write(tmp_path, runs)
    stats = summarize(load_runs([str(tmp_path)]))
    replay = stats["strategies"]["replay"]
    assert replay["acc"][2] == 4 and replay["runs"] == 8  # seeds are the independent units
    assert replay["acc"][1] > 0.05  # seed noise in the raw mean
    assert replay["paired"]["acc"][0] == pytest.approx(0.05) and replay["paired"]["acc"][1] == pytest.approx(0)
    assert replay["paired"]["forgetting"][0] == pytest.approx(-0.2)
    assert stats["orders"] == ["0-1", "1-0"] and not replay["missing"]


def test_missing_seeds_are_marked_not_averaged_quietly(tmp_path, capsys):
    runs = [fake_run("naive", s, None, 0.5, 0.2) for s in range(3)]
    runs += [fake_run("lora", s, None, 0.7, 0.0) for s in (0, 1)]
    write(tmp_path / "runs", runs)
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "| lora | 2 (2)* |" in out
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "missing runs (not averaged in): lora: seed2/orderdefault" in summary
    for name in ("heatmaps", "along_stream", "acc_vs_forgetting", "acc_vs_cost"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 0 and (tmp_path / "out" / f"{name}.pdf").exists()
    latex = (tmp_path / "out" / "table_main.tex").read_text()
    assert r"\begin{tabular}" in latex and r"lora & 2 (2)* & 0.700 $\pm$ 0.000" in latex  # n=2 still has a CI
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["strategies"]["lora"]["missing"] == ["seed2/orderdefault"]


def test_figures_are_the_same_bytes_when_drawn_again(tmp_path):
    """The paper's build redraws every figure: the same results must give the same files (no date)."""
    write(tmp_path / "runs", [fake_run("naive", s, None, 0.5 + s / 10, 0.2) for s in range(2)])
    for out in ("a", "b"):
        main([str(tmp_path / "runs"), "--out", str(tmp_path / out)])
    for name in ("heatmaps.pdf", "acc_vs_cost.pdf", "heatmaps.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_costs_have_their_own_table_and_fixed_parameter_counts_no_interval(tmp_path):
    runs = [{**fake_run("naive", s, None, 0.5, 0.2), "train_seconds": [1.0, 1.0 + s]} for s in range(3)]
    write(tmp_path / "runs", runs)
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    main_table = (tmp_path / "out" / "table_main.tex").read_text()
    costs = (tmp_path / "out" / "table_costs.tex").read_text()
    assert "train s" not in main_table and "trainable params" not in main_table  # metrics only
    # 10 parameters in every run: the count alone; training time varies over seeds: its interval
    assert r"naive & 3 $\pm$ 2 & 10 & 100 $\pm$ 0 \\" in costs  # 2, 3, 4 s: 3 +- 4.303 * 1 / sqrt(3)


def test_report_fails_clearly_without_results(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no results.json"):
        main([str(tmp_path / "empty")])
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "nothing")])


def test_per_run_table_from_real_runs(run_synthetic, tmp_path):
    run_synthetic("trainer.max_epochs=1", out=tmp_path / "runs" / "a")
    main([str(tmp_path / "runs"), "--runs", "--markdown", str(tmp_path / "t.md")])
    res = json.loads((tmp_path / "runs" / "a" / "results.json").read_text())
    assert f"| naive | 0 | {res['metrics']['acc']:.3f} |" in (tmp_path / "t.md").read_text()


def trained(run: dict, cap: int, patience: int, curves: list[list[float]]) -> dict:
    """``run`` with per-task model selection under an epoch cap and early stopping's patience."""
    validation = [{"curve": c, "chosen": c.index(max(c)), "epochs": len(c)} for c in curves]
    selection = {"trainer": {"max_epochs": cap}, "selection": {"patience": patience}}
    return run | {"validation": validation, "config": run["config"] | selection}


def choices(study: Path, rate: str) -> None:
    """A tuning record for every strategy the paper names a chosen value of, each value ``rate``."""
    keys = {"low_lr": ["strategy.low_lr.lr", "strategy.low_lr.layer_decay", "strategy.low_lr.head_lr"],
            "lora": ["strategy.lora.lr"], "freeze": ["optimizer.lr", "strategy.freeze.share"],
            "replay": ["optimizer.lr", "strategy.replay.ratio"]}  # fmt: skip
    named = ("naive", "replay", "distill", "mc_dropout", "single_task", "low_lr", "lora", "freeze", "multitask")
    for strategy in named:
        chosen = [f"{k}={rate}" for k in keys.get(strategy, ["optimizer.lr"])]
        other = [f"{k}=5e-05" for k in keys.get(strategy, ["optimizer.lr"])]
        (study / "tuning" / strategy).mkdir(parents=True)
        (study / "tuning" / strategy / "choice.yaml").write_text(
            f"chosen: [{', '.join(chosen)}]\ncandidates:\n"
            f"- {{overrides: [{', '.join(chosen)}], acc: 0.71, learning_acc: 0.72, forgetting: 0.02}}\n"
            f"- {{overrides: [{', '.join(other)}], acc: 0.65, learning_acc: 0.75, forgetting: 0.01}}\n"
        )


def test_paper_template_fills_every_placeholder(tmp_path, monkeypatch):
    # the paper on the converged study (cap 10, patience 2), its convergence section against the same
    # seeds and orders of the earlier 3-epoch study (BASELINE)
    strategies = ["naive", "low_lr", "freeze", "mc_dropout", "replay", "distill", "lora"]
    orders = ([0, 1, 2, 3], [2, 0, 3, 1], [3, 1, 0, 2])
    runs = [fake_run(s, seed, order, 0.5 + 0.01 * i + 0.02 * seed, 0.1) for i, s in enumerate(strategies)
            for seed in range(2) for order in orders]  # fmt: skip
    runs += [fake_run(s, seed, [0, 1, 2, 3], 0.8, 0.0) for s in ("multitask", "single_task", "step_matched")
             for seed in range(2)]  # fmt: skip
    runs[0] |= {"setup_seconds": {"model": 1800.0}}  # naive, seed 0, first order
    converged = [trained(r, 10, 2, [[0.5, 0.6, 0.7, 0.8, 0.7, 0.7], [0.5, 0.6, 0.7, 0.5, 0.5]]) for r in runs]
    earlier = [trained(r | {"metrics": r["metrics"] | {"acc": r["metrics"]["acc"] - 0.05}}, 3, 1, [[0.5, 0.6, 0.7]] * 2)
               for r in runs if r["seed"] == 0]  # fmt: skip
    routed = [fake_run("routed_lora", seed, [0, 1, 2, 3], 0.6, 0.0) | {"strategy_report": [{}, {"routing_acc": 0.9,
              "oracle_acc": 0.7}]} for seed in range(2)]  # fmt: skip
    libs = {"torch": "2.13.0+cpu", "lightning": "2.6.6", "transformers": "5.24.0", "peft": "0.21.2",
            "datasets": "5.2.0"}  # fmt: skip
    converged = [r | {"versions": libs} for r in converged]
    routed = [r | {"versions": libs | {"transformers": "5.25.0"}} for r in routed]  # a later environment
    class_il = [r for r in runs if r["config"]["stream"]["order"] == [0, 1, 2, 3]
                and r["strategy"] in ("naive", "replay", "distill", "multitask")] + routed  # fmt: skip
    reports = {"task": json.loads(json.dumps(summarize(runs))), "class": json.loads(json.dumps(summarize(class_il)))}
    sys.path.insert(0, str(ROOT / "paper"))
    import build

    study, base = tmp_path / "converged", tmp_path / "cap3"
    choices(study, "0.0001")
    choices(base, "0.0002")
    (base / "tuning" / "naive" / "choice.yaml").write_text((study / "tuning" / "naive" / "choice.yaml").read_text())
    # single_task is chosen by learning accuracy; final accuracy would have chosen the other trial
    (study / "tuning" / "single_task" / "choice.yaml").write_text(
        "chosen: [optimizer.lr=0.0001]\ncandidates:\n"
        "- {overrides: [optimizer.lr=0.0001], acc: 0.40, learning_acc: 0.78, forgetting: 0.3}\n"
        "- {overrides: [optimizer.lr=5e-05], acc: 0.45, learning_acc: 0.75, forgetting: 0.3}\n"
    )
    write(study / "task", converged)
    write(study / "class", routed)
    trial = fake_run("naive", 0, None, 0.7, 0.1) | {"evaluated_on": "validation", "setup_seconds": {"model": 1800.0}}
    trial["versions"] = libs
    write(study / "tuning", [trial])
    write(base / "task", earlier)
    write(base / "class", [fake_run(s, seed, [0, 1, 2, 3], 0.3 + 0.02 * seed, 0.2) for s in ("naive", "distill")
                           for seed in range(2)])  # fmt: skip
    lm = fake_run("naive", 0, None, 0.5, 0.2)
    lm["metrics"] |= {"general_drop/repeat": 0.4, "general_drop/hamlet": 1.0}
    write(tmp_path / "lm", [lm])
    monkeypatch.setattr(build, "STUDY", study)
    monkeypatch.setattr(build, "LM", tmp_path / "lm")
    monkeypatch.setattr(build, "CONVERGENCE", study / "task")
    monkeypatch.setattr(build, "BASELINE", str(base))
    build.render(ROOT / "paper" / "paper.tex.in", tmp_path / "paper.tex", reports)
    text = (tmp_path / "paper.tex").read_text()
    assert "{{" not in text and r"0.520 $\pm$ " in text
    assert r"naive & 2 & lr=0.0001 & 0.710 & 0.650 \\" in text  # the tuning table
    assert r"lr=5e-05 & 0.650 & 0.750 & 0.010 \\" in text  # naive's trials, in the order of their rates
    assert "lr=5e-05 (0.450; chosen lr=0.0001: 0.400)" in text  # single_task, had it been chosen by final acc
    assert r"0.900 $\pm$ 0.000 of the test inputs" in text  # routed LoRA's routing accuracy
    # two runs of 1,800 s set-up + 3.3 s of training and evaluation each (+ 49 short runs): 1.0 hours
    assert "used 1.0 hours of one CPU thread" in text and "1 tuning trials and 50 final runs" in text
    assert "patience of\n2 epochs under a cap of 10" in text and "a cap of 3 epochs and a patience of\n1" in text
    assert "LoRA's rate (0.0002 under the short cap,\n0.0001 here)" in text  # the earlier choice, then this one
    assert "Of the 9 tunings, 8" in text and "naive's settings did not" in text  # naive chose alike in both
    assert ("torch 2.13.0+cpu, lightning 2.6.6, transformers 5.24.0 (49 of 51) or 5.25.0 (2 of 51), peft 0.21.2, "
            "datasets 5.2.0") in text  # fmt: skip
    # the earlier study's runs (seed 0) against this study's of the same seed and order: every task of the
    # earlier ones ended at its cap of 3, none here at 10; acc +0.05 (the earlier runs were made 0.05 lower)
    assert r"naive & 3 & 1 & 100\% & 3.0 & 0.500 & 0.450 & 0.100 & 3 \\" in text
    assert r" & 10 & 1 & 0\% & 3.5 & 0.500 & 0.500 & 0.100 & 3 \\" in text
    assert r" & difference &  &  &  & 0.000 & 0.050 & 0.000 & 0 \\" in text
    assert build.convergence(["class", "naive", "acc"]) == r"0.310 $\pm$ 0.127"  # the earlier class-IL runs
    assert "that run took\n0.5 hours" in text  # the earlier study's compute: its one run with 1,800 s of set-up
    # a study that lacks a strategy's runs: every placeholder that needs them is named, the paper kept
    del reports["task"]["strategies"]["replay"]
    with pytest.raises(SystemExit, match=r"placeholders of paper.tex.in cannot be filled(.|\n)*diff:task:replay:acc"):
        build.render(ROOT / "paper" / "paper.tex.in", tmp_path / "paper.tex", reports)
    assert (tmp_path / "paper.tex").read_text() == text
    assert build.alternative("naive", "acc") == "lr=0.0001 as well (0.710)"  # final accuracy chose it
    (study / "tuning" / "naive" / "choice.yaml").write_text("chosen: [optimizer.lr=5e-05]\ncandidates: []\n")
    assert build.edges() == "naive (optimizer.lr at its lowest candidate, 5e-05)"


def test_a_share_under_one_percent_keeps_a_decimal():
    sys.path.insert(0, str(ROOT / "paper"))
    import build

    assert [build.percent(x) for x in (0.0, 0.002, 0.43)] == [r"0\%", r"0.2\%", r"43\%"]


def test_per_run_table_shows_the_general_drops_and_the_peft_method(run_synthetic, tmp_path):
    from cl.analysis.report import label

    run_synthetic("experiment=synthetic_instruct", "~stream.tasks.g2", "trainer.max_epochs=1", out=tmp_path / "r" / "a")
    main([str(tmp_path / "r"), "--runs", "--markdown", str(tmp_path / "t.md")])
    head = (tmp_path / "t.md").read_text().splitlines()[0]
    assert "general_drop/filler" in head and "general_drop/other" in head
    run = {"strategy": "lora", "config": {"strategy": {"lora": {"method": "ia3"}}}}
    assert label(run) == "lora (ia3)" and label(run | {"config": {"strategy": None}}) == "lora"
    assert label({"strategy": "lora", "config": {"strategy": {"lora": {"mode": "shared"}}}}) == "lora (shared)"


def test_intransigence_is_measured_against_single_task_runs(tmp_path, capsys):
    # fake_run's diagonal is [acc, acc]: single-task 0.9, naive 0.7, so intransigence 0.2 on every seed.
    runs = [fake_run("single_task", s, None, 0.9, 0.0) for s in range(3)]
    runs += [fake_run("naive", s, None, 0.7, 0.1) for s in range(3)]
    write(tmp_path, runs)
    stats = summarize(load_runs([str(tmp_path)]))
    mean, half, n = stats["strategies"]["naive"]["intransigence"]
    assert (n, half) == (3, pytest.approx(0)) and mean == pytest.approx(0.2)
    assert stats["strategies"]["single_task"]["intransigence"][0] == pytest.approx(0)
    main([str(tmp_path)])
    assert "| intransigence |" in capsys.readouterr().out.splitlines()[0]  # a column of the main table


def test_reference_points_in_one_order_serve_every_order(tmp_path, capsys):
    # single_task and multitask in one order only (a task trained alone does not depend on the order):
    # single_task is matched by seed and task name, so naive's reversed order (tasks b, a) still gets
    # its intransigence; neither is marked missing the other order, nor ranked against full designs.
    runs = [fake_run("single_task", s, [0, 1], 0.9, 0.0) | {"accuracy_matrix": [[0.9, 0.5], [0.9, 0.8]]}
            for s in range(3)]  # fmt: skip
    runs += [fake_run("multitask", s, [0, 1], 0.95, 0.0) for s in range(3)]
    for order, names in (([0, 1], ["a", "b"]), ([1, 0], ["b", "a"])):
        runs += [fake_run("naive", s, order, 0.7, 0.1) | {"task_names": names} for s in range(3)]
    write(tmp_path, runs)
    stats = summarize(load_runs([str(tmp_path)]))
    rows = stats["strategies"]
    assert rows["single_task"]["missing"] == [] and rows["single_task"]["orders"] == ["0-1"]
    # a* = 0.9 for a, 0.8 for b: naive (0.7 on both diagonals) is 0.15 short of learning alone
    assert rows["naive"]["intransigence"][0] == pytest.approx(0.15) and rows["naive"]["intransigence"][2] == 3
    assert set(stats["rank_intervals"]) == {"naive"}  # the others ran in one order of two
    assert stats["rank_by_order"]["1-0"] == ["naive"]
    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| multitask | 0.950 (#1) | not run |" in out
    assert "run in fewer task orders, averaged over those only: " in out and "single_task (0-1)" in out


def test_model_selection_is_summarised_per_task(tmp_path):
    # Two runs: one stops early on task a (best at its first epoch), one keeps improving to the cap.
    a_early = {"curve": [0.6, 0.5], "chosen": 0, "epochs": 2}
    rising = {"curve": [0.7, 0.8, 0.9], "chosen": 2, "epochs": 3}
    early = fake_run("naive", 0, None, 0.7, 0.1) | {"validation": [a_early, rising]}
    a_late = {"curve": [0.4, 0.6, 0.8], "chosen": 2, "epochs": 3}
    late = fake_run("naive", 1, None, 0.7, 0.1) | {"validation": [a_late, None]}
    for r in (early, late):
        r["config"]["trainer"] = {"max_epochs": 3}
    write(tmp_path / "runs", [early, late])
    main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    sel = json.loads((tmp_path / "out" / "stats.json").read_text())["strategies"]["naive"]["selection"]
    assert sel["a"]["curve"] == pytest.approx([0.5, 0.55, 0.8]) and sel["a"]["runs_at"] == [2, 2, 1]
    assert sel["a"]["chosen"] == 2.0 and sel["a"]["at_cap"] == 0.5  # best at the cap in one run of two
    assert sel["b"]["at_cap"] == 1.0 and sel["b"]["runs_at"] == [1, 1, 1]
    assert "| naive | 2.0 (50%) | 3.0 (100%) |" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "learning_curves.png").stat().st_size > 0


def test_the_learning_curves_legend_names_every_strategy(tmp_path, monkeypatch):
    import cl.analysis.figures as figures

    saved = []
    monkeypatch.setattr(figures, "save", lambda fig, out, name: saved.append(fig))
    curve = {"curve": [0.5, 0.6]}
    rows = {"naive": {"selection": {"a": curve, "b": curve}}, "multitask": {"selection": {"a": curve}}}
    figures.learning_curves(rows, ["multitask", "naive"], tmp_path)
    legends = [ax.get_legend() for ax in saved[0].axes if ax.get_legend()]
    assert [t.get_text() for t in legends[0].get_texts()] == ["multitask", "naive"]  # multitask has no curve in b


def test_fmt_rounds_before_the_sign():
    assert fmt((-0.0004, 0.006)) == "0.000 ± 0.006"  # not -0.000
    assert fmt(-0.0006) == "-0.001"
    assert fmt((1234.5, 56.7), latex=True) == r"1{,}234 $\pm$ 57"
    assert fmt(math.nan) == "n/a"


def test_rank_table_shows_the_mean_its_ranks_stand_on_when_seeds_differ(tmp_path, capsys):
    # a run stopped early leaves mc-like "a" with seed 2 only: ranks use seeds 0-1, which every
    # strategy has, and the table must print a's mean over those, not over its three seeds
    runs = [fake_run("naive", s, [0, 1], 0.6, 0.1) for s in range(2)]
    runs += [fake_run("a", s, [0, 1], acc, 0.1) for s, acc in enumerate([0.5, 0.52, 0.95])]
    write(tmp_path, runs)
    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| a | 0.510 (2 of its 3 seeds) | 2 |" in out  # its mean of all three (0.657) would rank first
    assert "| naive | 0.600 ± " in out


def test_convergence_compares_with_the_baseline_study_when_one_is_named(tmp_path, monkeypatch):
    # the paper on the converged study compares it with the 3-epoch study: CONVERGENCE holds the
    # reported study's own runs, BASELINE the other study; pairs are matched by seed and order
    sys.path.insert(0, str(ROOT / "paper"))
    import build

    def run(seed: int, order: list[int], acc: float, cap: int) -> dict:
        r = fake_run("naive", seed, order, acc, 0.1)
        return r | {"config": r["config"] | {"trainer": {"max_epochs": cap}}}

    write(tmp_path / "cap3" / "task", [run(s, o, 0.6, 3) for s in range(3) for o in ([0, 1], [1, 0])])
    converged = [run(s, [0, 1], 0.7, 10) for s in (1, 2, 4)] + [run(1, [1, 0], 0.9, 10), run(2, [1, 0], 0.6, 10)]
    write(tmp_path / "converged" / "task", converged)
    monkeypatch.setattr(build, "STUDY", tmp_path / "converged")
    monkeypatch.setattr(build, "CONVERGENCE", tmp_path / "converged" / "task")
    monkeypatch.setattr(build, "BASELINE", str(tmp_path / "cap3"))
    base, longer = build.convergence_pairs()["naive"]
    assert sorted(base) == sorted(longer) == [(1, "0-1"), (1, "1-0"), (2, "0-1"), (2, "1-0")]  # both finished
    assert {r["metrics"]["acc"] for r in base.values()} == {0.6}
    # each seed's differences averaged over its orders first: seed 1 (0.1 + 0.3) / 2, seed 2 (0.1 + 0.0) / 2,
    # so two values, 0.2 and 0.05 (mean 0.125), not four (each order's run counted as a seed)
    assert build.convergence(["diff", "naive", "acc"]).startswith("0.125")
    assert build.convergence(["n", "naive"]) == "2"
    assert r"naive & 3 & 2 & " in build.convergence(["table"])  # seeds, not runs
    assert (build.convergence(["cap"]), build.convergence(["cap", "base"])) == ("10", "3")
    (tmp_path / "cap3" / "tuning" / "naive").mkdir(parents=True)
    (tmp_path / "cap3" / "tuning" / "naive" / "choice.yaml").write_text("chosen: [optimizer.lr=0.0002]\n")
    assert build.convergence(["chosen", "naive", "optimizer.lr"]) == "0.0002"  # the baseline study's choice
    monkeypatch.setattr(build, "BASELINE", None)  # unset: the reported study is the baseline
    assert build.baseline() == tmp_path / "converged"
