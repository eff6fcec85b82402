"""The accuracy matrix as a heatmap: one drawing, used for every run's PNG and the report's figures
(matplotlib is imported only when a figure is made: it costs a second)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def draw_heatmap(ax, matrix: list[list[float]], task_names: list[str], fontsize: float = 10):
    """Rows: after training on; columns: evaluated on. Rows not reached yet stay empty."""
    t = len(task_names)
    grid = np.full((t, t), np.nan)
    for i, row in enumerate(matrix):
        grid[i, : len(row)] = row
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    for i in range(t):
        for j in range(t):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=fontsize,
                        color="w" if grid[i, j] < 0.6 else "k")  # fmt: skip
    ax.set_xticks(range(t), task_names, rotation=30, ha="right", fontsize=fontsize)
    ax.set_yticks(range(t), task_names, fontsize=fontsize)
    return im


def heatmap_png(matrix: list[list[float]], task_names: list[str], title: str) -> bytes:
    t = len(task_names)
    fig, ax = plt.subplots(figsize=(1.2 * t + 2, 1.0 * t + 1.5))
    im = draw_heatmap(ax, matrix, task_names)
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("after training on")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def general_png(rows: list[list[float]], names: list[str], kinds: list[str], task_names: list[str]) -> bytes:
    """Each general-ability probe along the stream, one panel each (their scales differ)."""
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.0), squeeze=False)
    labels = ["initial", *(f"after {t}" for t in task_names[: len(rows) - 1])]
    for j, (ax, name, kind) in enumerate(zip(axes[0], names, kinds)):
        ax.plot(range(len(rows)), [r[j] for r in rows], marker="o")
        ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(name)
        ax.set_ylabel("perplexity (lower is better)" if kind == "perplexity" else f"{kind} (higher is better)")
    fig.suptitle("general ability outside the stream")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
