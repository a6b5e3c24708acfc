"""The maintenance report's limits, as data: each value names where it comes from.

Override per run with `run_checks(conn, thresholds={...})`; unknown names are refused so a typo
cannot silently fall back to a default.
"""

from __future__ import annotations

MIB = 1024 * 1024

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


def thresholds_with(overrides: dict[str, float | int] | None) -> dict[str, float | int]:
    """The defaults with `overrides` applied; an unknown name is an error, not a silent default."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(MAINTENANCE_THRESHOLDS))
    if unknown:
        raise KeyError(f"unknown maintenance threshold(s): {', '.join(unknown)}")
    return {**MAINTENANCE_THRESHOLDS, **overrides}
