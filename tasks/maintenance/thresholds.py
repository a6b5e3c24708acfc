"""The maintenance report's limits, as data: each value names where it comes from.

Override per run with `run_checks(conn, thresholds={...})`; unknown names are refused so a typo
cannot silently fall back to a default. An environment's override (`[maintenance] thresholds`)
must have the default's type (a whole number where the default is one) and lie within
`MAINTENANCE_BOUNDS`.
"""

from __future__ import annotations

from annotated_types import Interval

MIB = 1024 * 1024
TIB = 1024 * MIB * 1024
XID_SPACE = 2**31  # transaction IDs a PostgreSQL cluster has before wraparound

MAINTENANCE_THRESHOLDS: dict[str, float | int] = {
    # PgHero long_running_query_sec default (PGHERO_LONG_RUNNING_QUERY_SEC, 60)
    "long_running_query_seconds": 60,
    # tradeops choice: a transaction idle for a minute holds locks and the xmin horizon back
    "idle_in_transaction_seconds": 60,
    # PgHero total_connections_threshold default (PGHERO_TOTAL_CONNECTIONS_THRESHOLD, 500)
    "total_connections_max": 500,
    # PgHero transaction_id_danger threshold as its overview page calls it (threshold: 1500000000)
    "xid_remaining_flag": 1_500_000_000,
    # PgHero transaction_id_danger default threshold (10,000,000 left): critical from here on
    "xid_remaining_critical": 10_000_000,
    # PgHero autovacuum_danger: fewer than 2,000,000 transactions before a forced anti-wraparound vacuum
    "autovacuum_freeze_margin": 2_000_000,
    # PgHero sequence_danger default threshold (0.9); flagged at >= 0.9 here
    "sequence_used_ratio": 0.9,
    # tradeops choice: PgHero lists every idx_scan = 0 index; below 10 MiB dropping it saves little
    "unused_index_min_bytes": 10 * MIB,
    # PgHero cache_hit_rate_threshold (99 %)
    "cache_hit_rate_min": 0.99,
    # PgHero slow_query_calls default (PGHERO_SLOW_QUERY_CALLS, 100)
    "slow_query_min_calls": 100,
    # PgHero slow_query_ms default (PGHERO_SLOW_QUERY_MS, 20)
    "slow_query_min_mean_ms": 20,
    # tradeops choice, as tasks/maintenance/operations.py: dead tuples >= 10% of live (autovacuum's 0.2, tighter)
    "dead_tuple_ratio": 0.1,
    # tradeops choice, as operations.py: and at least this many (tiny tables are autovacuum's job)
    "dead_tuple_min": 1000,
    # tradeops choice: the weekly maintenance cadence
    "stale_analyze_days": 7,
    # tradeops choice: estimated btree bloat of 30% of the index ...
    "index_bloat_ratio": 0.3,
    # tradeops choice: ... and at least 1 MiB of it (PgHero's index_bloat page uses 100 MB)
    "index_bloat_min_bytes": 1 * MIB,
    # tradeops choice: how many of the largest tables the size listing shows
    "table_sizes_top": 10,
}


RATIO = Interval(ge=0, le=1)
DAY_SECONDS = 24 * 3600

# What an override may be: ratios are fractions, transaction counts fit the XID space, sizes up to
# a TiB, durations up to a day (query timings) or ten years (days since ANALYZE).
MAINTENANCE_BOUNDS: dict[str, Interval] = {
    "long_running_query_seconds": Interval(ge=1, le=DAY_SECONDS),
    "idle_in_transaction_seconds": Interval(ge=1, le=DAY_SECONDS),
    "total_connections_max": Interval(ge=1, le=1_000_000),
    "xid_remaining_flag": Interval(ge=0, le=XID_SPACE),
    "xid_remaining_critical": Interval(ge=0, le=XID_SPACE),
    "autovacuum_freeze_margin": Interval(ge=0, le=XID_SPACE),
    "sequence_used_ratio": RATIO,
    "unused_index_min_bytes": Interval(ge=0, le=TIB),
    "cache_hit_rate_min": RATIO,
    "slow_query_min_calls": Interval(ge=0, le=1_000_000_000),
    "slow_query_min_mean_ms": Interval(ge=0, le=DAY_SECONDS * 1000),
    "dead_tuple_ratio": RATIO,
    "dead_tuple_min": Interval(ge=0, le=1_000_000_000),
    "stale_analyze_days": Interval(ge=1, le=3650),
    "index_bloat_ratio": RATIO,
    "index_bloat_min_bytes": Interval(ge=0, le=TIB),
    "table_sizes_top": Interval(ge=1, le=1000),
}


def thresholds_with(overrides: dict[str, float | int] | None) -> dict[str, float | int]:
    """The defaults with `overrides` applied; an unknown name is an error, not a silent default."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(MAINTENANCE_THRESHOLDS))
    if unknown:
        raise KeyError(f"unknown maintenance threshold(s): {', '.join(unknown)}")
    return {**MAINTENANCE_THRESHOLDS, **overrides}
