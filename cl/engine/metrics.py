"""Continual-learning metrics computed from one accuracy matrix.

Notation: ``R[i][j]`` is the test accuracy on task ``j`` after training on tasks ``0..i``
(``T`` tasks, so ``R`` is ``T x T``), and ``b[j]`` is the accuracy on task ``j`` before any
training (the "initial" row).

- ``acc``                 = 1/T * sum_j R[T-1][j]                         (final average accuracy)
- ``avg_incremental_acc`` = 1/T * sum_i ( 1/(i+1) * sum_{j<=i} R[i][j] )  (mean over the stream)
- ``bwt`` (GEM, Lopez-Paz & Ranzato 2017)
                          = 1/(T-1) * sum_{i<T-1} (R[T-1][i] - R[i][i])
- ``fwt`` (GEM)           = 1/(T-1) * sum_{i>=1} (R[i-1][i] - b[i])
- ``forgetting`` (Chaudhry et al. 2018)
                          = 1/(T-1) * sum_{j<T-1} ( max_{l in [j, T-2]} R[l][j] - R[T-1][j] )
- ``learning_acc``        = 1/T * sum_i R[i][i]                           (plasticity)

``bwt``, ``fwt`` and ``forgetting`` need at least two tasks; with one they are NaN.
"""

import math

import numpy as np

METRIC_NAMES = ("acc", "avg_incremental_acc", "bwt", "fwt", "forgetting", "learning_acc")


def _square(matrix) -> np.ndarray:
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square and non-empty, got shape {r.shape}")
    return r


def average_accuracy(matrix) -> float:
    r = _square(matrix)
    return float(r[-1].mean())


def average_incremental_accuracy(matrix) -> float:
    r = _square(matrix)
    return float(np.mean([r[i, : i + 1].mean() for i in range(len(r))]))


def backward_transfer(matrix) -> float:
    r = _square(matrix)
    t = len(r)
    if t < 2:
        return math.nan
    return float(np.mean([r[-1, i] - r[i, i] for i in range(t - 1)]))


def forward_transfer(matrix, initial) -> float:
    r = _square(matrix)
    b = np.asarray(initial, dtype=float)
    t = len(r)
    if b.shape != (t,):
        raise ValueError(f"initial accuracy must have {t} entries, got shape {b.shape}")
    if t < 2:
        return math.nan
    return float(np.mean([r[i - 1, i] - b[i] for i in range(1, t)]))


def forgetting(matrix) -> float:
    r = _square(matrix)
    t = len(r)
    if t < 2:
        return math.nan
    return float(np.mean([r[j : t - 1, j].max() - r[-1, j] for j in range(t - 1)]))


def learning_accuracy(matrix) -> float:
    r = _square(matrix)
    return float(np.diag(r).mean())


def all_metrics(matrix, initial) -> dict[str, float]:
    """The six stream metrics, keyed by the names in ``METRIC_NAMES``."""
    return {
        "acc": average_accuracy(matrix),
        "avg_incremental_acc": average_incremental_accuracy(matrix),
        "bwt": backward_transfer(matrix),
        "fwt": forward_transfer(matrix, initial),
        "forgetting": forgetting(matrix),
        "learning_acc": learning_accuracy(matrix),
    }
