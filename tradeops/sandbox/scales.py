"""Per-scale sizes, as data, so the builders hold no magic numbers.

``small`` is for tests (seconds), ``medium`` for demos (tens of seconds), ``large``
for performance work: on PostgreSQL it yields a database of more than 1 GB, almost
all of it the ``trades`` table, generated server side.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SandboxError


@dataclass(frozen=True)
class Scale:
    """How much of everything one sandbox holds."""

    name: str
    strategies: int  # strategy repositories and rows in ``strategies``
    commits_per_repo: int  # commits on ``main`` of each repository
    fillers_per_strategy: int  # historical (non-planted) experiments per strategy
    filler_trades_per_group: int  # mean trades per group of a filler experiment, PostgreSQL
    sqlite_filler_trades_per_group: int  # the same on SQLite (generated in Python, so smaller)
    history_days: int  # how far back experiments (and so trade partitions) go
    regime_hours: int  # hourly rows in ``regime_history``
    positions: int  # rows in ``positions`` on PostgreSQL
    sqlite_positions: int  # rows in ``positions`` on SQLite
    log_days: int  # dated log files go back this many days
    daily_log_bytes: int  # approximate size of each dated log file
    current_log_bytes: int  # approximate size of ``api.log`` (``trading.log`` is a big file)
    big_log_bytes: int  # size of each deliberately oversized log file (> 10 MiB)


MIB = 1024 * 1024

SCALES: dict[str, Scale] = {
    "small": Scale(
        name="small",
        strategies=5,
        commits_per_repo=10,
        fillers_per_strategy=2,
        filler_trades_per_group=300,
        sqlite_filler_trades_per_group=300,
        history_days=120,
        regime_hours=60 * 24,
        positions=500,
        sqlite_positions=500,
        log_days=60,
        daily_log_bytes=12 * 1024,
        current_log_bytes=64 * 1024,
        big_log_bytes=10 * MIB + 256 * 1024,
    ),
    "medium": Scale(
        name="medium",
        strategies=10,
        commits_per_repo=25,
        fillers_per_strategy=4,
        filler_trades_per_group=6_000,
        sqlite_filler_trades_per_group=3_000,
        history_days=365,
        regime_hours=365 * 24,
        positions=50_000,
        sqlite_positions=20_000,
        log_days=60,
        daily_log_bytes=256 * 1024,
        current_log_bytes=2 * MIB,
        big_log_bytes=16 * MIB,
    ),
    "large": Scale(
        name="large",
        strategies=50,
        commits_per_repo=40,
        fillers_per_strategy=4,
        filler_trades_per_group=30_000,
        sqlite_filler_trades_per_group=5_000,
        history_days=730,
        regime_hours=3 * 365 * 24,
        positions=1_000_000,
        sqlite_positions=100_000,
        log_days=60,
        daily_log_bytes=1 * MIB,
        current_log_bytes=8 * MIB,
        big_log_bytes=24 * MIB,
    ),
}


def get_scale(name: str) -> Scale:
    """Return the named scale, or a SandboxError naming the allowed ones."""
    try:
        return SCALES[name]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(s) for s in SCALES)
        raise SandboxError(f"unknown sandbox scale {name!r}; allowed scales: {allowed}") from None
