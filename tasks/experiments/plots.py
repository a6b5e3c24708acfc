"""The experiment report's pictures, as PNG files next to the report (matplotlib, no screen).

Three plots say what a table cannot: how the two groups' PnL is distributed (fat tails show),
how each group's PnL accumulated over time, and how the lift's confidence interval narrowed
day by day (the sequential interval the decision uses).

The PNGs are saved small (tasks/plots.py): the run's summary artifact embeds them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.plots import save_png

COLORS = {"control": "#4c72b0", "variant": "#dd8452"}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(7.5, 3.6), dpi=100)


def plot_pnl_distribution(trades: pd.DataFrame, title: str, path: Path) -> Path:
    """Both groups' per-trade PnL, the 1st-99th percentile range (the tails are counted, not drawn)."""
    plt, (fig, ax) = _figure()
    pnl = trades["pnl"].to_numpy(dtype=float)
    low, high = np.percentile(pnl, [1, 99]) if len(pnl) else (0.0, 1.0)
    bins = np.linspace(low, high if high > low else low + 1, 50)
    for group in ("control", "variant"):
        values = trades.loc[trades["group"] == group, "pnl"].to_numpy(dtype=float)
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.55, color=COLORS[group],
                    label=f"{group} (n={len(values)}, mean {values.mean():.2f})")
    ax.set(title=f"{title}: PnL per trade (1st-99th percentile)", xlabel="PnL per trade", ylabel="density")
    ax.legend()
    return save_png(fig, path)


def plot_cumulative_pnl(trades: pd.DataFrame, title: str, path: Path) -> Path:
    plt, (fig, ax) = _figure()
    for group in ("control", "variant"):
        rows = trades.loc[trades["group"] == group].sort_values("ts")
        if len(rows):
            ax.plot(rows["ts"], rows["pnl"].cumsum(), color=COLORS[group], label=group)
    ax.set(title=f"{title}: cumulative PnL", xlabel="time (UTC)", ylabel="cumulative PnL")
    ax.legend()
    fig.autofmt_xdate()
    return save_png(fig, path)


def plot_lift_over_time(days: list, lift: list, low: list, high: list, title: str, label: str, path: Path) -> Path:
    """The lift and its interval at each daily look; the decision waits until it leaves zero."""
    plt, (fig, ax) = _figure()
    x = pd.to_datetime(days, format="ISO8601", utc=True)
    values = [np.nan if v is None else v for v in lift]
    lows = [np.nan if v is None else v for v in low]
    highs = [np.nan if v is None else v for v in high]
    ax.fill_between(x, lows, highs, color=COLORS["variant"], alpha=0.25, label=label)
    ax.plot(x, values, color=COLORS["variant"], marker="o", markersize=3, label="lift")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set(title=f"{title}: lift over time", xlabel="day (UTC)", ylabel="variant - control, mean PnL per trade")
    ax.legend()
    fig.autofmt_xdate()
    return save_png(fig, path)
