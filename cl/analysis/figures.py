"""The report's figures, each written as PNG and PDF (the analysis imports matplotlib; a run imports
it only to draw its heatmap)."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cl.engine.plots import draw_heatmap  # noqa: E402


def save(fig, out: Path, name: str) -> None:
    for ext in ("png", "pdf"):
        fig.savefig(out / f"{name}.{ext}", dpi=120, bbox_inches="tight")
    plt.close(fig)


def grid(n: int) -> tuple:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat


def figures(stats: dict, names: list[str], out: Path) -> None:
    """``names``: the strategies in the order to show them."""
    rows = stats["strategies"]
    order = stats["orders"][0]  # matrices of different orders have different rows: show one order
    shown = [s for s in names if rows[s]["matrices"].get(order)]

    fig, axes = grid(len(shown))
    for ax, s in zip(axes, shown):
        draw_heatmap(ax, rows[s]["matrices"][order], rows[s]["task_names"][order], fontsize=8)
        ax.set_title(s)
    fig.suptitle(f"mean accuracy matrix (rows: after training on; order {order})")
    fig.tight_layout()
    save(fig, out, "heatmaps")

    fig, axes = grid(len(shown))
    for ax, s in zip(axes, shown):
        m, tasks = np.array(rows[s]["matrices"][order]), rows[s]["task_names"][order]
        for j, name in enumerate(tasks):
            ax.plot(range(j, len(m)), m[j:, j], marker="o", label=name)
        ax.set_xticks(range(len(tasks)), [f"after {t}" for t in tasks], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(s)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"accuracy on each task along the stream (order {order})")
    fig.tight_layout()
    save(fig, out, "along_stream")

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for s in names:
        (a, da, _), (f, df, _) = rows[s]["acc"], rows[s]["forgetting"]
        ax.errorbar(f, a, xerr=0 if math.isnan(df) else df, yerr=0 if math.isnan(da) else da, fmt="o", capsize=3)
        ax.annotate(s, (f, a), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("forgetting (lower is better)")
    ax.set_ylabel("final accuracy")
    ax.set_title("accuracy vs forgetting (mean ± 95% CI)")
    save(fig, out, "acc_vs_forgetting")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, cost, label in zip(axes, ("train_s", "trainable_params"), ("training time (s)", "trainable parameters")):
        for s in names:
            ax.errorbar(rows[s][cost][0], rows[s]["acc"][0], yerr=np.nan_to_num(rows[s]["acc"][1]), fmt="o", capsize=3)
            ax.annotate(s, (rows[s][cost][0], rows[s]["acc"][0]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("final accuracy")
    axes[1].set_xscale("log")
    fig.suptitle("accuracy vs cost")
    fig.tight_layout()
    save(fig, out, "acc_vs_cost")
