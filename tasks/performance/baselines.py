"""Baselines from duration samples, the 2-sigma check, and the `performance_baseline` rows health
checks read (`latest_baselines`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlmodel import select

from tasks.performance.percentiles import grouped_percentiles
from tradeops.store.engine import session_for
from tradeops.store.models import PerformanceBaseline
from tradeops.store.records import current_flow_run_id

if TYPE_CHECKING:  # the metrics exporter reads baselines without importing the Prefect client
    from tasks.performance.samples import DurationSample

WINDOW_DAYS = 30  # runbook 001: rolling window
RECENT_DAYS = 7  # the week since the last weekly recalculation: what is checked against the previous baseline
SIGMAS = 2.0  # runbook 001: alert on > 2 sigma deviation
MIN_SAMPLES = 10  # fewer: no baseline is stored for the operation (its percentiles are noise)
MIN_RECENT_SAMPLES = 3  # the weekly check: fewer recent samples than this say nothing


@dataclass(frozen=True)
class Baseline:
    source: str
    operation: str
    samples: int
    p50: float
    p95: float
    p99: float
    mean: float
    stddev: float

    @property
    def limit(self) -> float:
        """Above this, a duration is more than SIGMAS standard deviations over the mean."""
        return self.mean + SIGMAS * self.stddev


@dataclass(frozen=True)
class Anomaly:
    """An operation whose recent median left the previous baseline's mean + 2 sigma."""
    source: str
    operation: str
    recent_median: float
    recent_samples: int
    baseline_mean: float
    baseline_limit: float
    slow_runs: int  # recent samples above the limit


def key(sample_or_baseline) -> str:  # noqa: ANN001
    return f"{sample_or_baseline.source}:{sample_or_baseline.operation}"


def compute_baselines(samples: list[DurationSample]) -> list[Baseline]:
    """One baseline per (source, operation) with at least MIN_SAMPLES samples."""
    if not samples:
        return []
    stats = grouped_percentiles([key(s) for s in samples], np.array([s.seconds for s in samples]))
    found = []
    for i, name in enumerate(stats.names):
        if stats.counts[i] < MIN_SAMPLES:
            continue
        source, _, operation = name.partition(":")
        p50, p95, p99 = (float(v) for v in stats.percentiles[i])
        found.append(Baseline(source, operation, int(stats.counts[i]), p50, p95, p99, float(stats.means[i]),
                              float(stats.stddevs[i])))
    return found


@dataclass(frozen=True)
class WindowComparison:
    """One operation's durations of a recent window against its stored baseline (None: it has none).

    The rule (runbook 001 "alert on > 2 sigma deviation"): the window's *median* above the
    baseline's mean + 2 sigma. Mean and sigma describe single durations, so the statistic compared
    with them is one of single durations too, and a robust one: under the baseline at most 1/5 of
    durations lie beyond mean + 2 sigma whatever their distribution (Cantelli), so half of a window
    being beyond it is unlikely by chance; a window's p99 or max is beyond it by construction."""
    source: str
    operation: str
    samples: int
    median: float
    baseline: Baseline | None
    beyond_limit: int  # samples above the baseline's limit (0 without a baseline)
    min_samples: int

    @property
    def judged(self) -> bool:
        """A baseline exists and the window has enough samples to say anything."""
        return self.baseline is not None and self.samples >= self.min_samples

    @property
    def anomalous(self) -> bool:
        return self.judged and self.median > self.baseline.limit


def compare_window(samples: list[DurationSample], baselines: dict[str, Baseline], since: datetime,
                   min_samples: int) -> list[WindowComparison]:
    """Each operation with samples since `since`, by name, against its baseline in `baselines`."""
    recent: dict[str, list[float]] = {}
    for s in samples:
        if s.at >= since:
            recent.setdefault(key(s), []).append(s.seconds)
    found = []
    for name, values in sorted(recent.items()):
        baseline = baselines.get(name)
        source, _, operation = name.partition(":")
        found.append(WindowComparison(source, operation, len(values), float(np.median(values)), baseline,
                                      sum(v > baseline.limit for v in values) if baseline else 0, min_samples))
    return found


def anomalies(samples: list[DurationSample], previous: dict[str, Baseline], since: datetime) -> list[Anomaly]:
    """Operations whose samples since `since` have a median above their previous baseline's limit."""
    return [Anomaly(c.source, c.operation, c.median, c.samples, c.baseline.mean, c.baseline.limit, c.beyond_limit)
            for c in compare_window(samples, previous, since, MIN_RECENT_SAMPLES) if c.anomalous]


def latest_baselines(store_url: str, environment: str) -> dict[str, Baseline]:
    """The newest stored baseline of each operation, by `source:operation`: what health checks and
    the next recalculation compare against."""
    with session_for(store_url) as session:
        rows = session.exec(select(PerformanceBaseline).where(PerformanceBaseline.environment == environment)
                            .order_by(PerformanceBaseline.computed_at, PerformanceBaseline.id)).all()
    return {f"{r.source}:{r.operation}": Baseline(r.source, r.operation, r.samples, r.p50_seconds, r.p95_seconds,
                                                  r.p99_seconds, r.mean_seconds, r.stddev_seconds) for r in rows}


def save_baselines(store_url: str, environment: str, baselines: list[Baseline], window_start: datetime,
                   window_end: datetime) -> int:
    run_id = current_flow_run_id()
    with session_for(store_url) as session:
        session.add_all([PerformanceBaseline(
            flow_run_id=run_id, environment=environment, source=b.source, operation=b.operation,
            window_start=window_start, window_end=window_end, samples=b.samples, p50_seconds=b.p50,
            p95_seconds=b.p95, p99_seconds=b.p99, mean_seconds=b.mean, stddev_seconds=b.stddev)
            for b in baselines])
        session.commit()
    return len(baselines)


def window(now: datetime, days: int = WINDOW_DAYS) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now
