"""Building prometheus_client metric families from the table in `names.py`, and small helpers the
readers share (UTC times, histogram tallies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from tasks.metrics.names import METRICS

_FAMILY = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}


def family(name: str) -> Metric:
    """An empty family for `name`, typed and labelled as the table says."""
    spec = METRICS[name]
    return _FAMILY[spec.kind](spec.name, spec.help, labels=list(spec.labels))


def utc(moment: datetime | None) -> datetime | None:
    """Store times are UTC; SQLite (and `timestamp without time zone`) give them back naive."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def epoch(moment: datetime | None) -> float | None:
    moment = utc(moment)
    return moment.timestamp() if moment else None


def parse_time(text: str | None) -> datetime | None:
    """An ISO time from a run's result JSON (UTC when it does not say)."""
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


@dataclass
class Tally:
    """Cumulative histogram counts for fixed bucket bounds (seconds)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # observations <= each bound
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * len(self.bounds)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(self.bounds):
            if seconds <= bound:
                self.counts[i] += 1

    def add(self, counts: Iterable[int], count: int, total: float) -> None:
        """Fold in counts computed elsewhere (in SQL) for the same bounds."""
        self.counts = [a + b for a, b in zip(self.counts, counts)]
        self.count += count
        self.total += total

    def buckets(self) -> list[tuple[str, float]]:
        return [(_bound(b), c) for b, c in zip(self.bounds, self.counts)] + [("+Inf", self.count)]


def _bound(value: float) -> str:
    return repr(float(value))
