"""A robust trend per size series, and when a disk reaches 80% and 90% full.

Sizes are thinned to the last sample of each hour, or of each day over windows longer than
`HOURLY_UP_TO_DAYS` (a health check every 5 minutes would give Theil-Sen, O(n^2) in pairs, 8,640
points a month), then fitted with the Theil-Sen estimator
(scipy.stats.theilslopes): the median of the slopes between every pair of points, so a vacuum
that shrinks a table or a one-off bulk load moves it little. Its interval is the estimator's own
(`CONFIDENCE`); days until a level are given for the central slope and for the interval's ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy.stats import theilslopes
from sqlmodel import select

from tradeops.store.engine import session_for
from tradeops.store.models import SizeSample

CONFIDENCE = 0.95
LEVELS = (0.80, 0.90)  # runbook 002: "Scale database storage if usage > 80%"; 004/003 alert at 90%
HOURLY_UP_TO_DAYS = 60  # longer series are thinned per day: at most ~1,440 hourly points, then days
MIN_POINTS = 3  # fewer thinned points than this: no trend, only the latest size
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class SizePoint:
    at: datetime
    size_bytes: int
    capacity_bytes: int | None = None


@dataclass
class SeriesTrend:
    """One series' latest size and its fitted growth; `days_to` maps a level (0.8, 0.9) to the
    days from `last_at` until the fitted line reaches it: (central, soonest, latest), each None
    when it never does (flat or shrinking)."""

    kind: str
    series: str
    points: int
    first_at: datetime
    last_at: datetime
    last_bytes: int
    capacity_bytes: int | None
    slope_bytes_per_day: float | None = None
    slope_low: float | None = None
    slope_high: float | None = None
    fitted_bytes: float | None = None  # the line at `last_at`
    days_to: dict[float, tuple[float | None, float | None, float | None]] = field(default_factory=dict)

    @property
    def used_fraction(self) -> float | None:
        return self.last_bytes / self.capacity_bytes if self.capacity_bytes else None

    def growth_pct_per_30_days(self) -> float | None:
        if self.slope_bytes_per_day is None or not self.last_bytes:
            return None
        return 100.0 * self.slope_bytes_per_day * 30 / self.last_bytes

    def as_dict(self) -> dict:
        return {"kind": self.kind, "series": self.series, "points": self.points,
                "first_at": self.first_at.isoformat(), "last_at": self.last_at.isoformat(),
                "last_bytes": self.last_bytes, "capacity_bytes": self.capacity_bytes,
                "used_fraction": self.used_fraction, "slope_bytes_per_day": self.slope_bytes_per_day,
                "slope_low": self.slope_low, "slope_high": self.slope_high,
                "days_to": {f"{level:.0%}": list(days) for level, days in self.days_to.items()}}


def thinned(points: list[SizePoint]) -> list[SizePoint]:
    """The last point of each hour (each day when the points span more than HOURLY_UP_TO_DAYS), in time order."""
    ordered = sorted(points, key=lambda p: p.at)
    daily = ordered and (ordered[-1].at - ordered[0].at).days > HOURLY_UP_TO_DAYS
    last: dict[datetime, SizePoint] = {}
    for point in ordered:
        bucket = point.at.replace(minute=0, second=0, microsecond=0)
        last[bucket.replace(hour=0) if daily else bucket] = point
    return list(last.values())


def days_until(level_bytes: float, fitted_bytes: float, slope_per_day: float | None) -> float | None:
    """Days from now until a line at `fitted_bytes` growing `slope_per_day` reaches `level_bytes`:
    0 when it is there already, None when it never gets there."""
    if fitted_bytes >= level_bytes:
        return 0.0
    if slope_per_day is None or slope_per_day <= 0:
        return None
    return (level_bytes - fitted_bytes) / slope_per_day


def fit_series(kind: str, series: str, points: list[SizePoint]) -> SeriesTrend:
    """Theil-Sen over the thinned points (x in days since the first); days to each of `LEVELS` of
    the newest capacity, from the line's value at the newest point."""
    kept = thinned(points)
    newest = kept[-1]
    trend = SeriesTrend(kind, series, len(kept), kept[0].at, newest.at, newest.size_bytes, newest.capacity_bytes)
    if len(kept) < MIN_POINTS:
        return trend
    x = np.array([(p.at - kept[0].at).total_seconds() / SECONDS_PER_DAY for p in kept])
    y = np.array([p.size_bytes for p in kept], dtype=float)
    slope, intercept, low, high = theilslopes(y, x, alpha=CONFIDENCE)
    trend.slope_bytes_per_day, trend.slope_low, trend.slope_high = float(slope), float(low), float(high)
    trend.fitted_bytes = float(intercept + slope * x[-1])
    if trend.capacity_bytes:
        for level in LEVELS:
            target = level * trend.capacity_bytes
            # the steepest slope reaches a level soonest; the shallowest latest
            trend.days_to[level] = (days_until(target, trend.fitted_bytes, trend.slope_bytes_per_day),
                                    days_until(target, trend.fitted_bytes, trend.slope_high),
                                    days_until(target, trend.fitted_bytes, trend.slope_low))
    return trend


def load_series(store_url: str, environment: str, since: datetime, until: datetime) -> dict[tuple[str, str], list[SizePoint]]:
    """Every recorded series of the environment in [since, until], by (kind, series)."""
    with session_for(store_url) as session:
        rows = session.exec(select(SizeSample).where(
            SizeSample.environment == environment, SizeSample.sampled_at >= since,
            SizeSample.sampled_at <= until).order_by(SizeSample.sampled_at)).all()
    series: dict[tuple[str, str], list[SizePoint]] = {}
    for row in rows:
        series.setdefault((row.kind, row.series), []).append(SizePoint(row.sampled_at, row.size_bytes,
                                                                       row.capacity_bytes))
    return series


def fit_all(series: dict[tuple[str, str], list[SizePoint]]) -> list[SeriesTrend]:
    return [fit_series(kind, name, points) for (kind, name), points in sorted(series.items())]
