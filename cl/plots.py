"""Figures of a run (kept apart: importing matplotlib costs a second)."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def heatmap_figure(matrix: list[list[float]], task_names: list[str], title: str):
    t = len(task_names)
    grid = np.full((t, t), np.nan)
    for i, row in enumerate(matrix):
        grid[i, : len(row)] = row
    fig, ax = plt.subplots(figsize=(1.2 * t + 2, 1.0 * t + 1.5))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    for i in range(t):
        for j in range(t):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", color="w" if grid[i, j] < 0.6 else "k")
    ax.set_xticks(range(t), task_names, rotation=30, ha="right")
    ax.set_yticks(range(t), task_names)
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("after training on")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def heatmap_png(matrix: list[list[float]], task_names: list[str], title: str) -> bytes:
    fig = heatmap_figure(matrix, task_names, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
