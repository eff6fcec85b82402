"""``python -m cl.pack [overrides] --vary KEY=V1,V2 [--vary ...] --out DIR``: several LoRA runs
trained together over one frozen base (``cl.engine.packed``), one results folder each.

The runs are the grid of the ``--vary`` values (seeds, ranks, scalings, rates), every other setting
shared; each lands in ``DIR/<key=value,...>`` with the same ``results.json`` a run alone writes, so
``cl.report`` and ``cl.analysis.tune`` read them as any sweep's. Calling it again with the same
arguments continues a stopped job after the last task every run finished (with ``checkpoint=true``,
the default).

    python -m cl.pack strategy=lora --vary seed=0,1,2,3 --vary strategy.lora.r=8,16 --out results/packed
"""

import argparse
import itertools
import logging
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from cl.engine.packed import run_packed
from cl.engine.results import RunResults  # imports cl.engine.build, whose resolvers the configs use

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def grid(vary: list[str]) -> list[list[str]]:
    """Every combination of the ``KEY=V1,V2`` values, as override lists."""
    axes = []
    for item in vary:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise SystemExit(f"cl.pack: --vary takes KEY=V1,V2,..., got {item!r}")
        axes.append([f"{key}={v}" for v in values.split(",")])
    return [list(point) for point in itertools.product(*axes)]


def finished(out: Path) -> bool:
    """Whether the run in ``out`` is finished, or has every task done (a packed job stopped between
    its runs' last saves, which the others' finishing proves): then it is marked finished."""
    if not (out / "results.json").exists():
        return False
    res = RunResults.load(out)
    return res.status == "finished" or res.completed_tasks == len(res.task_names)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cl.pack", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="cl.run overrides shared by every run")
    parser.add_argument("--vary", action="append", default=[], help="KEY=V1,V2: runs with each value")
    parser.add_argument("--out", required=True, help="folder of the runs' folders")
    args = parser.parse_args(argv)
    points = grid(args.vary)
    if len(points) < 2:
        raise SystemExit("cl.pack: give at least two runs (--vary seed=0,1)")
    if any(o.startswith("logger=") and o != "logger=none" for o in args.overrides):
        raise SystemExit("cl.pack: packed runs write results.json only; live loggers (logger=...) are not supported")
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfgs = [compose("config", overrides=["logger=none", *args.overrides, *point]) for point in points]
    outs = [Path(args.out) / ",".join(point) for point in points]
    done = [o for o in outs if finished(o)]
    if len(done) == len(outs):
        for out in outs:
            res = RunResults.load(out)
            if res.status != "finished":
                res.status, res.error = "finished", None
                res.save(out)
        print(f"cl.pack: all {len(outs)} runs in {args.out} are finished")
        return
    if done:  # packed runs train in lockstep: a part cannot rejoin the others
        raise SystemExit(f"cl.pack: {len(done)} of the {len(outs)} runs are finished already ({done[0]}); "
                         "move them away to train the packed runs again")  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        results = [exp.results for exp in run_packed(cfgs, outs)]
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    for point, res in zip(points, results):
        print(f"{','.join(point):40} acc {res.metrics()['acc']:.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
