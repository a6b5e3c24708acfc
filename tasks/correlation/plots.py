"""The correlation heatmap (matplotlib, no screen): red positive, blue negative, each cell labelled."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the screenless backend

from tasks.correlation.matrix import CorrelationMatrix  # noqa: E402
from tasks.plots import save_png  # noqa: E402


def plot_heatmap(matrix: CorrelationMatrix, title: str, path: Path) -> Path:
    n = len(matrix.strategies)
    size = max(4.0, 1.0 + 0.9 * n)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=100)
    image = ax.imshow(matrix.values, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), matrix.strategies, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), matrix.strategies, fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{matrix.values[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    return save_png(fig, path)
