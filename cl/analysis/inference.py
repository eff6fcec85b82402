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
- ``rank_intervals``: simultaneous rank intervals from every pairwise paired test, Holm-adjusted
  together: a strategy's rank runs from one past those separated above it to the count less those
  separated below it.
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
    return {"mean": mean, "half": half, "n": n, "p": zero_mean_p(by_seed)}


def zero_mean_p(diffs) -> float:
    """Two-sided one-sample t-test p-value of mean zero (nan below two values). Identical
    differences have no spread: p is 1 when they are all zero and 0 otherwise."""
    if len(diffs) < 2:
        return math.nan
    if np.std(diffs) == 0:
        return 1.0 if np.mean(diffs) == 0 else 0.0
    return float(scipy_stats.ttest_1samp(diffs, 0.0).pvalue)


def holm(pvalues: dict) -> dict:
    """Holm's step-down adjustment (family-wise error) of ``{key: p}``; nan p-values are left out."""
    tested = sorted((p, k) for k, p in pvalues.items() if not math.isnan(p))
    m, out, running = len(tested), {}, 0.0
    for i, (p, k) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))  # adjusted p-values never decrease
        out[k] = running
    return out


def rank_intervals(acc: dict[str, dict], level: float = 0.95) -> dict[str, dict]:
    """``{strategy: {seed: mean acc}}`` -> each strategy's rank (1 = best) and a simultaneous 95%
    interval for every rank at once: every pair of strategies is compared by a paired t-test over
    the seeds they share, the p-values are Holm-adjusted together, and a strategy's rank can lie
    anywhere from 1 + (strategies separated above it) to n - (strategies separated below it).
    Holm's family-wise control makes the intervals hold jointly with 95% probability (Klein et al.
    2020's construction with Holm in place of Bonferroni); a bootstrap over five seeds would be too
    narrow."""
    names = sorted(acc)
    seeds = sorted(set.intersection(*(set(acc[s]) for s in names))) if names else []
    if not seeds:
        return {}
    table = {s: np.array([acc[s][k] for k in seeds]) for s in names}
    means = {s: float(table[s].mean()) for s in names}
    order = sorted(names, key=lambda s: -means[s])  # stable: ties keep alphabetical order
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    adjusted = holm({(a, b): zero_mean_p(table[a] - table[b]) for a, b in pairs})  # nan (one seed): left out
    alpha = 1 - level
    above = {s: 0 for s in names}
    below = {s: 0 for s in names}
    for (a, b), p in adjusted.items():
        if p < alpha:
            better, worse = (a, b) if means[a] > means[b] else (b, a)
            above[worse] += 1
            below[better] += 1
    n = len(names)
    # acc: the mean the rank stands on, over the shared seeds only (a strategy with a seed the others
    # lack has another mean over all of its own, which would not match its rank); of: its own seeds
    return {s: {"rank": order.index(s) + 1, "low": 1 + above[s], "high": n - below[s], "seeds": len(seeds),
                "acc": means[s], "of": len(acc[s])} for s in names}  # fmt: skip
