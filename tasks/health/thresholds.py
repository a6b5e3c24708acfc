"""Health-check thresholds, as data, each with the runbook line it comes from.

A metric is graded `pass`, `warn` or `fail`. `direction` says which side is bad: for
`low_is_bad` the value fails when it is below `fail` (or equal, with `inclusive`), for
`high_is_bad` when it is above. Override per environment in `tradeops.toml`:
`[health.thresholds.disk_free_pct] warn = 25`; an override must lie within the metric's `bounds`,
and warn must stay on the good side of fail (else the warning could never show).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from annotated_types import Interval

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Threshold:
    metric: str
    unit: str
    direction: Literal["low_is_bad", "high_is_bad"]
    warn: float
    fail: float
    inclusive: bool
    source: str
    bounds: Interval  # what an override of warn or fail may be

    def warns_before_failing(self, warn: float, fail: float) -> bool:
        """Whether `warn` lies on the good side of `fail`, so a value can warn before it fails."""
        return warn >= fail if self.direction == "low_is_bad" else warn <= fail

    def grade(self, value: float) -> Status:
        if self._crosses(value, self.fail):
            return "fail"
        if self._crosses(value, self.warn):
            return "warn"
        return "pass"

    def _crosses(self, value: float, limit: float) -> bool:
        if self.direction == "low_is_bad":
            return value <= limit if self.inclusive else value < limit
        return value >= limit if self.inclusive else value > limit


# Overrides stay within what a metric can sensibly be: a percentage, a certificate life of up to
# ten years, an age of up to a year.
PERCENT = Interval(ge=0, le=100)
MINUTES_PER_YEAR = 60 * 24 * 365

HEALTH_THRESHOLDS: dict[str, Threshold] = {
    t.metric: t
    for t in (
        Threshold("disk_free_pct", "%", "low_is_bad", warn=20, fail=10, inclusive=False,
                  source="runbook 004 Key Metrics: Disk Space <20% free warning, <10% critical", bounds=PERCENT),
        Threshold("memory_used_pct", "%", "high_is_bad", warn=70, fail=90, inclusive=False,
                  source="runbook 004 Key Metrics: Memory Usage >70% warning, >90% critical", bounds=PERCENT),
        Threshold("connections_used_pct", "%", "high_is_bad", warn=70, fail=90, inclusive=False,
                  source="runbook 001 remediation matrix: connection pool available < 10%", bounds=PERCENT),
        Threshold("certificate_days_left", "days", "low_is_bad", warn=30, fail=7, inclusive=True,
                  source="runbook 001 Certificate Management: alerts at 30, 7 and 1 days",
                  bounds=Interval(ge=0, le=3650)),
        Threshold("newest_log_age_minutes", "min", "high_is_bad", warn=60, fail=24 * 60, inclusive=False,
                  source="runbook 004 Hourly Checks / Morning Log Review (last 12 hours)",
                  bounds=Interval(ge=0, le=MINUTES_PER_YEAR)),
        Threshold("data_freshness_minutes", "min", "high_is_bad", warn=60, fail=24 * 60, inclusive=False,
                  source="runbook 004 Morning Checklist: verify data freshness, SELECT MAX(timestamp)",
                  bounds=Interval(ge=0, le=MINUTES_PER_YEAR)),
        Threshold("api_error_rate_pct", "%", "high_is_bad", warn=2, fail=5, inclusive=False,
                  source="runbook 004 Key Metrics: Error Rate >2% warning, >5% critical", bounds=PERCENT),
        Threshold("api_p99_latency_ms", "ms", "high_is_bad", warn=150, fail=200, inclusive=False,
                  source="runbook 004 Key Metrics: API Latency (p99) >150ms warning, >200ms critical",
                  bounds=Interval(ge=1, le=600_000)),
        Threshold("cpu_used_pct", "%", "high_is_bad", warn=70, fail=85, inclusive=False,
                  source="runbook 004 Key Metrics: CPU Usage >70% warning, >85% critical", bounds=PERCENT),
        Threshold("idle_in_transaction_seconds", "s", "high_is_bad", warn=60, fail=300, inclusive=False,
                  source="no runbook number: a session idle in a transaction (or blocking others) for longer "
                         "than one deep-check interval (runbook 001: every 5 min) fails; a minute warns",
                  bounds=Interval(ge=0, le=86_400)),
        Threshold("queue_depth", "items", "high_is_bad", warn=500, fail=1000, inclusive=False,
                  source="runbook 004 Key Metrics: Queue Depth >500 warning, >1000 critical",
                  bounds=Interval(ge=0, le=1_000_000_000)),
        Threshold("queue_oldest_age_seconds", "s", "high_is_bad", warn=60, fail=300, inclusive=False,
                  source="no runbook number (004 gives the queue's depth only): an item left unprocessed for "
                         "longer than one deep-check interval (runbook 001: every 5 min) fails; a minute warns",
                  bounds=Interval(ge=0, le=7 * 86_400)),
        Threshold("backup_age_hours", "h", "high_is_bad", warn=26, fail=48, inclusive=False,
                  source="runbooks 000/003/004: daily backup at 02:00; one missed run warns, two fail",
                  bounds=Interval(ge=0, le=24 * 365)),
    )
}


def thresholds_with(overrides: dict[str, dict[str, float]]) -> dict[str, Threshold]:
    """The defaults with an environment's `[health.thresholds]` applied."""
    merged = dict(HEALTH_THRESHOLDS)
    for metric, levels in overrides.items():
        merged[metric] = replace(merged[metric], **levels)
    return merged
