"""``python -m cl.analysis.budget OUT [--against OTHER]``: how far a study of ``scripts/study.sh`` has
got and what it has cost, in hours of one CPU thread, and with ``--against`` a finished study of the
same plan, what it will cost in all.

The plan is ``OUT/jobs.txt`` (written by study.sh): a ``tune S`` job is S's tuning trials
(``OUT/tuning/S/trial<k>``, ``--trials`` planned, the extension past a grid's edge not counted until
it runs), a ``final S SCENARIO ORDER`` job is ``--seeds`` runs
(``OUT/SCENARIO/S/order<o>/seed<k>``). A run's cost is what it measured inside itself: set-up,
evaluation and training (study.sh gives each run one thread; process start-up is not counted).

With ``--against``, each finished unit (trial or run) is paired with the unit of the same path in
OTHER; the ratio of the paired sums says how much more this study costs per unit, and the units not
yet finished are projected as their OTHER counterpart (or the mean of OTHER's units of the same job)
times that ratio; the units of a job the other study never ran are left out, and counted.
"""

import argparse
import json
import statistics
from pathlib import Path

from cl.engine.names import order_name


def thread_seconds(runs: list[dict]) -> float:
    """Set-up, evaluation and training as measured inside the runs (process start-up not counted)."""
    return sum(sum((r.get("setup_seconds") or {}).values()) + r.get("initial_eval_seconds", 0)
               + sum(r["train_seconds"]) + sum(r["eval_seconds"]) for r in runs)  # fmt: skip


def finished(folder: Path) -> dict | None:
    try:  # a run still writing its first file, or a damaged one, has not finished
        run = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return run if run.get("status") == "finished" else None


def units(job: str, trials: int, seeds: int) -> tuple[str, list[str]]:
    """A job's folders, relative to the study: ``tune naive`` -> tuning/naive/trial0.. (the planned
    trials), ``final naive task [0,1,2,3]`` -> task/naive/order0-1-2-3/seed0.."""
    kind, strategy, *rest = job.split()
    if kind == "tune":
        return f"tuning/{strategy}", [f"trial{k}" for k in range(trials)]
    scenario, order = rest
    return f"{scenario}/{strategy}/order{order_name(json.loads(order))}", [f"seed{k}" for k in range(seeds)]


def job_rows(out: Path, trials: int, seeds: int) -> list[tuple[str, Path, list[str]]]:
    """(job, its folder, its unit names): the planned units plus any extension trial that ran; a
    complete tuning (its choice.yaml written) is the trials it ran, fewer when the grid was smaller."""
    rows = []
    for job in (out / "jobs.txt").read_text().split("\n"):
        if not job.strip():
            continue
        sub, names = units(job, trials, seeds)
        ran = sorted(p.name for p in (out / sub).glob("trial*")) if job.startswith("tune") else []
        complete = (out / sub / "choice.yaml").exists()
        rows.append((job, Path(sub), ran if complete else names + [n for n in ran if n not in names]))
    return rows


def progress(out: Path, against: Path | None, trials: int = 4, seeds: int = 5) -> dict:
    """Per job: units finished of planned, hours spent; totals, and with ``against`` the projection."""
    jobs, paired_here, paired_there, remaining, unprojected = [], 0.0, 0.0, 0.0, 0
    for job, sub, names in job_rows(out, trials, seeds):
        here = {n: finished(out / sub / n) for n in names}
        done = {n: r for n, r in here.items() if r}
        there = {n: r for n in names if against and (r := finished(against / sub / n))}
        both = set(done) & set(there)
        job_here, job_there = (thread_seconds([d[n] for n in both]) for d in (done, there))
        paired_here, paired_there = paired_here + job_here, paired_there + job_there
        # an unfinished unit without a counterpart costs the mean of the other study's units of this job
        fallback = statistics.fmean(thread_seconds([r]) for r in there.values()) if there else None
        left = [thread_seconds([there[n]]) if n in there else fallback for n in here if n not in done]
        remaining += sum(x for x in left if x is not None)
        unprojected += sum(x is None for x in left)
        jobs.append({"job": job, "finished": len(done), "planned": len(names),
                     "hours": thread_seconds(list(done.values())) / 3600,
                     "ratio": job_here / job_there if job_there else None})  # fmt: skip
    spent = sum(j["hours"] for j in jobs)
    summary = {"jobs": jobs, "hours": spent, "finished": sum(j["finished"] for j in jobs),
               "planned": sum(j["planned"] for j in jobs)}  # fmt: skip
    if against and paired_there:
        ratio = paired_here / paired_there
        summary |= {"ratio": ratio, "projected_hours": spent + ratio * remaining / 3600, "unprojected": unprojected}
    return summary


def render(summary: dict, lanes: int) -> str:
    lines = ["| job | finished / planned | thread hours | x the other study's, paired |", "|---|---|---|---|"]
    lines += [
        f"| {j['job']} | {j['finished']} / {j['planned']} | {j['hours']:.2f} | "
        f"{'' if j['ratio'] is None else format(j['ratio'], '.2f')} |"
        for j in summary["jobs"]
    ]
    lines.append(f"\n{summary['finished']} of {summary['planned']} units finished, "
                 f"{summary['hours']:.1f} CPU-thread hours spent.")  # fmt: skip
    if "ratio" in summary:
        total = summary["projected_hours"]
        lines.append(f"Per paired unit, {summary['ratio']:.2f}x the other study's cost; projected total "
                     f"{total:.0f} CPU-thread hours, {total / lanes:.0f} h of wall time on {lanes} lanes.")  # fmt: skip
        if summary["unprojected"]:
            lines.append(f"Not in that projection: {summary['unprojected']} unfinished units of jobs the other study "
                         "never ran.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.analysis.budget", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the study's folder (holds jobs.txt)")
    parser.add_argument("--against", type=Path, help="a finished study of the same plan, to project from")
    parser.add_argument("--trials", type=int, default=4, help="planned trials per tuning (study.sh's TRIALS)")
    parser.add_argument("--seeds", type=int, default=5, help="runs per final job (study.sh's SEEDS)")
    parser.add_argument("--lanes", type=int, default=2, help="runs at once (study.sh runs 2)")
    args = parser.parse_args(argv)
    if not (args.out / "jobs.txt").exists():
        parser.error(f"{args.out}/jobs.txt not found: give the folder scripts/study.sh wrote (its OUT)")
    if args.against and not args.against.is_dir():  # else a typo would quietly drop the projection
        parser.error(f"--against {args.against} is not a folder: give another study's OUT, e.g. results/study")
    print(render(progress(args.out, args.against, args.trials, args.seeds), args.lanes), end="")


if __name__ == "__main__":
    main()
