"""``python -m cl.tune [overrides] --trials N --out DIR``: choose a strategy's settings on validation data.

Every strategy declares its search space in its config, as ``_search_`` (a Hydra override name ->
its candidates; ``configs/strategy/*.yaml``); composed strategies search the union of their spaces.
This draws ``--trials`` points of the space, the same budget for every strategy: the whole grid when
it is no larger, else a seeded random sample of it without repeats; then, when a chosen number is
the lowest or highest value tried, up to ``--extend`` more trials step past it (one step of its
grid: geometric for rates, arithmetic otherwise), each followed by a new choice, so a grid that does
not bracket the optimum is widened by the same rule for every strategy. Each trial is a run of the
stream (``cl.run``, in its own process and folder ``DIR/trial<k>``, ``skip_done`` so that a stopped
tuning resumes) with ``stream.validation_fraction`` of every task's training data held out and
scored instead of the test split; the choice maximises final accuracy (``acc``) or the metric a
strategy declares as ``_tune_metric_`` (single_task: ``learning_acc``, the accuracy it serves as a
reference); then ``cl.analysis.tune`` writes the candidates and the chosen overrides to
``DIR/choice.yaml``, which the final runs take (``--print`` prints them as one line of overrides).
``choice.yaml`` exists only once the tuning is complete, extension trials included (the choices on
the way go to ``choice.partial.yaml``): a final run started beside a tuning cannot take a choice
that a later extension trial would change.

    python -m cl.tune strategy=replay --trials 8 --out results/tuning/text4/replay
    python -m cl.run strategy=replay $(python -m cl.tune --print results/tuning/text4/replay/choice.yaml)
"""

import argparse
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def strategies(overrides: list[str]) -> list:
    """The chosen strategies' config nodes."""
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return list((cfg.strategy or {}).values())


def declared_metric(overrides: list[str]) -> str:
    """What the choice maximises: a strategy's ``_tune_metric_`` (a reference point such as single_task
    serves its accuracy right after each task, ``learning_acc``), else final accuracy, ``acc``."""
    found = {node.get("_tune_metric_") for node in strategies(overrides) if node and node.get("_tune_metric_")}
    if len(found) > 1:
        raise ValueError(f"the chosen strategies declare different tuning metrics {sorted(found)}: give --metric")
    return found.pop() if found else "acc"


def search_space(overrides: list[str]) -> dict[str, list]:
    """The union of the chosen strategies' ``_search_`` spaces, in the order they are declared."""
    space = {}
    for node in strategies(overrides):
        for key, values in ((node or {}).get("_search_") or {}).items():
            if key in space and list(values) != space[key]:
                raise ValueError(f"strategies declare different candidates for {key}: {space[key]} and {list(values)}")
            space[key] = list(OmegaConf.to_container(values, resolve=True))
    fixed = {o.split("=", 1)[0] for o in overrides if "=" in o}
    return {k: v for k, v in space.items() if k not in fixed}  # a setting given on the command line stays


def trials(space: dict[str, list], budget: int, seed: int = 0) -> list[dict]:
    """The whole grid when it has at most ``budget`` points, else ``budget`` of them drawn without
    repeats (seeded, so a resumed tuning draws the same points)."""
    grid = [dict(zip(space, point)) for point in itertools.product(*space.values())]
    if len(grid) <= budget:
        return grid
    return [grid[i] for i in sorted(random.Random(seed).sample(range(len(grid)), budget))]


def as_override(key: str, value) -> str:
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def beyond(values: list, side: str):
    """One grid step past the lowest (``side="low"``) or highest tried value: geometric when the values
    are positive and evenly spaced in ratio (rates, sizes), else arithmetic; None when not numbers."""
    v = sorted(set(values))
    if len(v) < 2 or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
        return None
    geometric = v[0] > 0 and v[-1] / v[0] > 3  # rates and sizes span decades; shares and weights do not
    a, b = (v[0], v[1]) if side == "low" else (v[-1], v[-2])
    new = a * a / b if geometric else a - (b - a)
    new = int(round(new)) if all(isinstance(x, int) for x in v) else float(f"{new:.3g}")
    return None if new in v else new


def extension(space: dict, tried: list[dict], chosen: list[str]) -> dict | None:
    """The next trial past an edge: the chosen point with one edge setting stepped beyond it."""
    best = next((p for p in tried if {as_override(k, p[k]) for k in p} >= set(chosen)), None)
    if best is None:
        return None
    for key in space:
        values = [*space[key], *(p[key] for p in tried)]  # the declared grid and the steps past it so far
        for side, edge in (("low", min(values)), ("high", max(values))):
            if best[key] == edge and (new := beyond(values, side)) is not None:
                point = {**best, key: new}
                if point not in tried:
                    return point
    return None


def finished(folder: Path) -> bool:
    try:
        return json.loads((folder / "results.json").read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def steps_taken(out: Path, space: dict, first: int) -> list[dict]:
    """The extension trials an earlier, stopped tuning started (``trial<first>`` on), from their
    folders' overrides: a resumed tuning continues that sequence instead of choosing again over
    them, which would step from a choice the uninterrupted tuning never made."""
    taken = []
    while (path := out / f"trial{first + len(taken)}" / ".hydra" / "overrides.yaml").exists():
        given = dict(o.split("=", 1) for o in yaml.safe_load(path.read_text()) if "=" in o)
        taken.append({key: yaml.safe_load(given[key]) for key in space if key in given})
    return taken


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.tune", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="cl.run overrides (strategy=..., experiment=...)")
    parser.add_argument("--trials", type=int, default=8, help="points of the search space to run")
    parser.add_argument("--out", help="folder of the trials and choice.yaml")
    parser.add_argument("--metric", help="what the choice maximises on validation (default: the strategy's "
                        "_tune_metric_, else acc)")  # fmt: skip
    parser.add_argument("--validation-fraction", type=float, default=0.2, help="share of training data held out")
    parser.add_argument("--extend", type=int, default=2, help="trials past a chosen value at the grid's edge")
    parser.add_argument("--print", metavar="CHOICE", help="print a choice.yaml's overrides on one line and exit")
    args = parser.parse_args(argv)
    if args.print:
        sys.stdout.write(" ".join(yaml.safe_load(Path(args.print).read_text())["chosen"]) + "\n")
        return
    if not args.out:
        parser.error("--out is required")
    if args.trials < 1:
        parser.error(f"--trials must be at least 1, got {args.trials}")
    space = search_space(args.overrides)
    metric = args.metric or declared_metric(args.overrides)
    points = trials(space, args.trials)
    out = Path(args.out)
    common = [*args.overrides, f"stream.validation_fraction={args.validation_fraction}",
              "stream.evaluate_on=validation", "skip_done=true"]  # fmt: skip

    def run(k: int, point: dict) -> None:
        chosen = [as_override(key, value) for key, value in point.items()]
        sys.stdout.write(f"trial {k + 1}: {' '.join(chosen) or '(no search space)'}\n")
        sys.stdout.flush()
        if finished(out / f"trial{k}"):  # a resumed tuning: no process for what is done
            return
        cmd = [sys.executable, "-m", "cl.run", *common, *chosen, f"hydra.run.dir={out / f'trial{k}'}"]
        if subprocess.run(cmd).returncode != 0:
            sys.stdout.write(f"trial {k + 1} failed (see {out / f'trial{k}'}/run.log); the others go on\n")

    # The choice is the offline analysis's (which the engine does not import): run as a program.
    partial, final = out / "choice.partial.yaml", out / "choice.yaml"
    final.unlink(missing_ok=True)  # a tuning run again (more trials, a wider extension) is not complete yet
    choose = [sys.executable, "-m", "cl.analysis.tune", str(out), "--metric", metric,
              "--out", str(partial)]  # fmt: skip
    taken = steps_taken(out, space, len(points)) if args.extend else []
    for k, point in enumerate(points + taken):
        run(k, point)
    points += taken
    if code := subprocess.run(choose).returncode:
        raise SystemExit(code)
    for _ in range(args.extend - len(taken)):
        chosen = yaml.safe_load(partial.read_text())["chosen"]
        point = extension(space, points, chosen)
        if point is None:
            break
        points.append(point)
        run(len(points) - 1, point)
        if code := subprocess.run(choose).returncode:
            raise SystemExit(code)
    partial.replace(final)


if __name__ == "__main__":
    main()
