"""Report periods: a month (`2026-10`), a quarter (`2026-Q3`), or the previous one of either."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from tradeops.errors import UsageError


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=timezone.utc)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def parse_period(text: str, today: date | None = None) -> Period:
    today = today or datetime.now(timezone.utc).date()
    if text == "previous-month":
        year, month = _add_months(today.year, today.month, -1)
        text = f"{year:04d}-{month:02d}"
    elif text == "previous-quarter":
        quarter = (today.month - 1) // 3  # the current quarter, 0-based
        year, month = _add_months(today.year, quarter * 3 + 1, -3)
        text = f"{year:04d}-Q{(month - 1) // 3 + 1}"
    if match := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise UsageError(f"period {text!r}: month must be 01-12")
        return Period(text, _month_start(year, month), _month_start(*_add_months(year, month, 1)))
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        year, first = int(match[1]), (int(match[2]) - 1) * 3 + 1
        return Period(text, _month_start(year, first), _month_start(*_add_months(year, first, 3)))
    raise UsageError(f"period {text!r}: expected YYYY-MM, YYYY-Qn, previous-month or previous-quarter")
