"""A graded check result, and grading a measured value against its threshold."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from tasks.health.thresholds import Status, Threshold


@dataclass(frozen=True)
class CheckResult:
    target: str
    check: str
    status: Status
    value: float | None = None
    unit: str | None = None
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def as_utc(value: datetime | str) -> datetime:
    """A timestamp column's value as an aware UTC datetime (SQLite gives text, naive means UTC)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def graded(target: str, check: str, threshold: Threshold, value: float, what: str) -> CheckResult:
    """Grade `value`; the detail says what was measured and, when not passing, which limit it crossed."""
    status = threshold.grade(value)
    detail = what
    if status in ("warn", "fail"):
        limit = threshold.fail if status == "fail" else threshold.warn
        op = {("low_is_bad", True): "<=", ("low_is_bad", False): "<",
              ("high_is_bad", True): ">=", ("high_is_bad", False): ">"}[(threshold.direction, threshold.inclusive)]
        detail += f" ({status}: {op} {limit:g} {threshold.unit})"
    return CheckResult(target, check, status, round(value, 3), threshold.unit, detail)


def failed(target: str, check: str, reason: str) -> CheckResult:
    return CheckResult(target, check, "fail", None, None, reason)


def skipped(target: str, check: str, reason: str) -> CheckResult:
    return CheckResult(target, check, "skip", None, None, reason)
