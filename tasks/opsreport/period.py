"""The span an ops report covers: the UTC day that ends at the run (daily, 23:30), or the seven
days before Monday's run (weekly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tradeops.errors import UsageError

PERIODS = ("day", "week")


@dataclass(frozen=True)
class ReportPeriod:
    kind: str  # day | week
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        last = self.end - timedelta(microseconds=1)
        return (f"daily-{self.start:%Y-%m-%d}" if self.kind == "day"
                else f"weekly-{self.start:%Y-%m-%d}-to-{last:%Y-%m-%d}")


def report_period(kind: str, now: datetime) -> ReportPeriod:
    """`day`: today (UTC) until now, so the 23:30 run covers the whole working day; `week`: the
    seven days until now (Monday 06:00 covers the week through Sunday night and this morning)."""
    if kind not in PERIODS:
        raise UsageError(f"period: {kind!r} is not one of {', '.join(PERIODS)}")
    if kind == "day":
        return ReportPeriod(kind, now.replace(hour=0, minute=0, second=0, microsecond=0), now)
    return ReportPeriod(kind, now - timedelta(days=7), now)
