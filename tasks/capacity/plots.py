"""The capacity report's pictures (matplotlib, no screen), PNG files next to the report: each
disk's used share with its Theil-Sen line run forward to the 80%/90% levels, and the size of each
database and its largest tables over time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the screenless backend

from tasks.capacity.forecast import LEVELS, SeriesTrend, SizePoint, thinned  # noqa: E402
from tasks.plots import save_png  # noqa: E402

GIB = 1024 ** 3


def plot_disks(trends: list[SeriesTrend], points: dict[tuple[str, str], list[SizePoint]], horizon_days: int,
               path: Path) -> Path:
    """Used share of each disk, its fitted line `horizon_days` ahead, the 80% and 90% levels."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    for trend in trends:
        series = thinned(points[(trend.kind, trend.series)])
        ax.plot([p.at for p in series], [100.0 * p.size_bytes / p.capacity_bytes for p in series],
                marker=".", markersize=3, label=trend.series)
        if trend.slope_bytes_per_day is not None and trend.capacity_bytes:
            end = trend.last_at + timedelta(days=horizon_days)
            ahead = trend.fitted_bytes + trend.slope_bytes_per_day * horizon_days
            ax.plot([trend.last_at, end], [100.0 * trend.fitted_bytes / trend.capacity_bytes,
                                           100.0 * ahead / trend.capacity_bytes], linestyle="--", color="grey")
    for level in LEVELS:
        ax.axhline(100 * level, color="red" if level >= 0.9 else "orange", linewidth=0.8)
    ax.set(title=f"Disk used, Theil-Sen trend {horizon_days} days ahead", xlabel="time (UTC)", ylabel="% used")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return save_png(fig, path)


def plot_sizes(trends: list[SeriesTrend], points: dict[tuple[str, str], list[SizePoint]], title: str,
               path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    for trend in trends:
        series = thinned(points[(trend.kind, trend.series)])
        ax.plot([p.at for p in series], [p.size_bytes / GIB for p in series], marker=".", markersize=3,
                label=trend.series)
    ax.set(title=title, xlabel="time (UTC)", ylabel="GiB")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return save_png(fig, path)
