"""The report's figures, each written as PNG and PDF (the analysis imports matplotlib; a run imports
it only to draw its heatmap). Strategies are told apart by colour and marker with a legend, not by
labels placed beside points, which collide when strategies score alike."""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cl.engine.plots import draw_heatmap  # noqa: E402

MARKERS = "osD^vP*Xh<>p"


# A PDF would otherwise carry the time it was drawn, and every paper build would change bytes that
# depend only on the results.
NO_DATE = {"png": {}, "pdf": {"CreationDate": None}}


def save(fig, out: Path, name: str) -> None:
    for ext in ("png", "pdf"):
        fig.savefig(out / f"{name}.{ext}", dpi=120, bbox_inches="tight", metadata=NO_DATE[ext])
    plt.close(fig)


def grid(n: int) -> tuple:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes


def style(i: int) -> dict:
    return {"color": plt.cm.tab10(i % 10), "marker": MARKERS[i % len(MARKERS)]}


def half(x) -> float:
    return 0.0 if x is None or math.isnan(x) else x


def heatmaps(rows: dict, shown: list[str], order: str, out: Path) -> None:
    fig, axes = grid(len(shown))
    fig.subplots_adjust(wspace=0.55, hspace=0.55)
    cols = axes.shape[1]
    for k, (ax, s) in enumerate(zip(axes.flat, shown)):
        im = draw_heatmap(ax, rows[s]["matrices"][order], rows[s]["task_names"][order], fontsize=8)
        ax.set_title(s)
        if k % cols == 0:  # axis titles once per row and column: the panels sit close together
            ax.set_ylabel("after training on", fontsize=8)
        if k + cols >= len(shown):
            ax.set_xlabel("evaluated on", fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="accuracy (mean over seeds)")
    fig.suptitle(f"mean accuracy matrix (task order {order})")
    save(fig, out, "heatmaps")


def along_stream(rows: dict, shown: list[str], order: str, out: Path) -> None:
    """Each task's score from when it is trained to the end, with the seeds' 95% band."""
    fig, axes = grid(len(shown))
    for ax, s in zip(axes.flat, shown):
        m, tasks = np.array(rows[s]["matrices"][order]), rows[s]["task_names"][order]
        band = rows[s].get("matrix_half", {}).get(order)
        for j, name in enumerate(tasks):
            xs = np.arange(j, len(m))
            ax.plot(xs, m[j:, j], marker="o", ms=3, label=name)
            if band is not None:
                h = np.nan_to_num(np.array(band)[j:, j])
                ax.fill_between(xs, m[j:, j] - h, m[j:, j] + h, alpha=0.2)
        ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(s)
        ax.set_xlabel("after training on", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
    axes.flat[0].legend(fontsize=7, title="task", title_fontsize=7)
    fig.suptitle(f"each task's accuracy along the stream, mean and 95% band over seeds (order {order})")
    fig.tight_layout()
    save(fig, out, "along_stream")


def scatter(rows: dict, names: list[str], x: str, xlabel: str, out: Path, name: str, log: bool = False) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, s in enumerate(names):
        (a, da, _), (v, dv, _) = rows[s]["acc"], rows[s][x]
        ax.errorbar(v, a, xerr=half(dv), yerr=half(da), capsize=3, linestyle="none", label=s, **style(i))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final accuracy")
    if log:
        ax.set_xscale("log")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    ax.set_title("mean ± 95% interval over seeds")
    save(fig, out, name)


def paired_differences(stats: dict, names: list[str], out: Path) -> None:
    """Each strategy minus the reference (same seed and order), with its interval; † marks a
    difference separated from noise after Holm's adjustment."""
    rows, ref = stats["strategies"], stats["reference"]
    shown = [s for s in names if rows[s].get("paired")]
    if not shown:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(shown) + 1.6), sharey=True)
    for ax, metric in zip(axes, ("acc", "forgetting")):
        for k, s in enumerate(shown):
            mean, h, _ = rows[s]["paired"][metric]
            ax.errorbar(mean, k, xerr=half(h), capsize=3, **style(names.index(s)))
            if rows[s].get("paired_holm", {}).get(metric, 1.0) < 0.05:
                ax.annotate("†", (mean, k), textcoords="offset points", xytext=(0, 5), ha="center")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel(f"{metric} minus {ref}'s")
    axes[0].set_yticks(range(len(shown)), shown)
    axes[0].invert_yaxis()
    fig.suptitle(f"paired differences to {ref}: mean and 95% interval over seeds († Holm-adjusted p < 0.05)")
    fig.tight_layout()
    save(fig, out, "paired_differences")


def learning_curves(rows: dict, names: list[str], out: Path) -> None:
    """Each task's validation score after every epoch, per strategy (mean over the runs that
    reached that epoch): whether the tasks converged within the epoch cap."""
    shown = [s for s in names if rows[s].get("selection")]
    tasks = list(dict.fromkeys(t for s in shown for t in rows[s]["selection"]))
    if not tasks:
        return
    fig, axes = grid(len(tasks))
    for ax, task in zip(axes.flat, tasks):
        for s in shown:
            sel = rows[s]["selection"].get(task)
            if sel:
                ax.plot(range(1, len(sel["curve"]) + 1), sel["curve"], label=s, ms=4, **style(names.index(s)))
        ax.set_title(task)
        ax.set_xlabel("validation (epoch)", fontsize=8)
        ax.set_ylabel("validation accuracy", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    # every strategy once, from whichever panel has it (multitask trains, so is curved, in one task only)
    handles = {}
    for ax in axes.flat[: len(tasks)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    handles = {s: handles[s] for s in shown if s in handles}
    axes.flat[len(tasks) - 1].legend(handles.values(), handles.keys(), fontsize=7, bbox_to_anchor=(1.02, 1),
                                     loc="upper left")  # fmt: skip
    fig.suptitle("validation accuracy of the task being trained, mean over runs")
    fig.tight_layout()
    save(fig, out, "learning_curves")


def figures(stats: dict, names: list[str], out: Path) -> None:
    """``names``: the strategies in the order to show them."""
    rows = stats["strategies"]
    order = stats["orders"][0]  # matrices of different orders have different rows: show one order
    shown = [s for s in names if rows[s]["matrices"].get(order)]
    heatmaps(rows, shown, order, out)
    along_stream(rows, shown, order, out)
    scatter(rows, names, "forgetting", "forgetting (lower is better)", out, "acc_vs_forgetting")
    scatter(rows, names, "train_s", "training time (s)", out, "acc_vs_cost")
    scatter(rows, names, "trainable_params", "trainable parameters", out, "acc_vs_params", log=True)
    paired_differences(stats, names, out)
    learning_curves(rows, names, out)
