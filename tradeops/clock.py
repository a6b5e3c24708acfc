"""The time tradeops acts on: now, in UTC, or a time the caller set.

Everything that decides by time (set ids, catalog times, retention, re-verification, the
maintenance pre-flight, schedules simulated over months) asks `utcnow()`. Tests and simulations
set the clock with `frozen_at(moment)` or `set_now(moment)`; nothing in production does.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

_fixed: datetime | None = None


def utcnow() -> datetime:
    return _fixed if _fixed is not None else datetime.now(timezone.utc)


def set_now(moment: datetime | None) -> None:
    """Fix the clock at `moment` (aware), or give it back to the system with None."""
    global _fixed
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock takes an aware time (UTC)")
    # a plain datetime in UTC, whatever subclass came in (pendulum's loses its zone in arithmetic)
    _fixed = None if moment is None else datetime.fromtimestamp(moment.timestamp(), tz=timezone.utc)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    before = _fixed
    set_now(moment)
    try:
        yield
    finally:
        set_now(before)
