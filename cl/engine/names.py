"""The names a run's folders and tags are made of, kept free of heavy imports so that offline
scripts (``cl.analysis.report``, ``cl.analysis.budget``) name folders exactly as the engine does."""

from collections.abc import Mapping, Sequence


def strategy_name(strategies: Mapping | None) -> str:
    """``naive``, ``replay`` or ``replay+distill``: the chosen strategies, naive dropped when combined."""
    names = list(strategies or {}) or ["naive"]
    return "+".join(n for n in names if n != "naive" or len(names) == 1)


def order_name(order: Sequence[int] | None) -> str:
    """``default`` or the task order joined by dashes (``2-0-3-1``), for folder names and tags."""
    return "default" if order is None else "-".join(str(i) for i in order)
