"""Inference that matches a sweep's design: seeds are clusters, task orders a factor.

A sweep runs every strategy under each seed and each task order. The runs of one seed share their
data splits and initial heads across orders, so they are not independent draws: treating the 15 runs
of 5 seeds x 3 orders as 15 samples makes intervals too narrow. Order, in turn, is a designed factor,
and pooling its effect into noise makes them too wide. So, as a mixed model with a random seed
intercept would for this balanced design:

- ``clustered``: a strategy's runs of each seed are averaged over orders first; the interval is a
  Student t interval over those per-seed means (n = seeds). Per-order results are given apart.
- ``paired``: a strategy minus the reference on the same (seed, order), averaged per seed, tested
  with a one-sample t-test over seeds; the p-values of every (strategy, metric) tested are
  Holm-adjusted together (``holm``), and ``separated`` says which differences survive at 0.05.
- ``rank_intervals``: seeds resampled with replacement (a cluster bootstrap, seeded), every strategy's
  mean accuracy recomputed and ranked each time; the 2.5 and 97.5 percentiles of its rank.
"""

import math
from collections import defaultdict

import numpy as np
from scipy import stats as scipy_stats


def t_interval(xs: list[float], level: float = 0.95) -> tuple[float, float, int]:
    """Mean, half-width of the two-sided Student t interval (nan below two values) and count."""
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return math.nan, math.nan, 0
    if len(xs) == 1:
        return xs[0], math.nan, 1
    sd = float(np.std(xs, ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(xs) - 1)) * sd / math.sqrt(len(xs))
    return float(np.mean(xs)), half, len(xs)


def per_seed(keyed: dict[tuple, float | None]) -> dict:
    """``{(seed, order): value}`` -> ``{seed: mean over that seed's orders}``."""
    groups = defaultdict(list)
    for (seed, _order), v in keyed.items():
        if v is not None and not math.isnan(v):
            groups[seed].append(v)
    return {s: float(np.mean(vs)) for s, vs in sorted(groups.items())}


def clustered(keyed: dict[tuple, float | None]) -> tuple[float, float, int]:
    """The seed-clustered mean and 95% interval (n counts seeds, not runs)."""
    return t_interval(list(per_seed(keyed).values()))


def paired(keyed: dict[tuple, float | None], reference: dict[tuple, float | None]) -> dict:
    """Differences on shared (seed, order) keys, averaged per seed: mean, half-width, seeds, p-value."""
    diffs = {k: v - reference[k] for k, v in keyed.items() if k in reference and None not in (v, reference[k])}
    by_seed = list(per_seed(diffs).values())
    mean, half, n = t_interval(by_seed)
    p = math.nan
    if n >= 2:
        p = 1.0 if np.std(by_seed) == 0 and mean == 0 else float(scipy_stats.ttest_1samp(by_seed, 0.0).pvalue)
        p = 0.0 if math.isnan(p) else p  # identical non-zero differences: no spread, no doubt
    return {"mean": mean, "half": half, "n": n, "p": p}


def holm(pvalues: dict) -> dict:
    """Holm's step-down adjustment (family-wise error) of ``{key: p}``; nan p-values are left out."""
    tested = sorted((p, k) for k, p in pvalues.items() if not math.isnan(p))
    m, out, running = len(tested), {}, 0.0
    for i, (p, k) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))  # adjusted p-values never decrease
        out[k] = running
    return out


def rank_intervals(acc: dict[str, dict], draws: int = 2000, seed: int = 0) -> dict[str, dict]:
    """``{strategy: {seed: mean acc}}`` -> each strategy's rank (1 = best) and its bootstrap 95%
    interval, resampling the seeds every strategy has, with replacement."""
    names = sorted(acc)
    seeds = sorted(set.intersection(*(set(acc[s]) for s in names))) if names else []
    if not seeds:
        return {}
    table = np.array([[acc[s][k] for k in seeds] for s in names])  # strategies x seeds
    rank = lambda means: (-means).argsort(kind="stable").argsort() + 1  # noqa: E731
    point = rank(table.mean(1))
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(seeds), size=(draws, len(seeds)))
    ranks = np.stack([rank(table[:, p].mean(1)) for p in picks])  # draws x strategies
    low, high = np.percentile(ranks, [2.5, 97.5], axis=0, method="nearest")
    return {s: {"rank": int(point[i]), "low": int(low[i]), "high": int(high[i]), "seeds": len(seeds)}
            for i, s in enumerate(names)}  # fmt: skip
