"""The maintenance health report's checks, PgHero style: one small module per concern, each check
a named query and a plain function `check_<name>(cursor, thresholds) -> list[Finding]`.

`run_checks` gives every check its own READ ONLY transaction with a statement_timeout and a
lock_timeout, and rolls it back: one slow catalog query, or one queued behind a migration's
lock, cannot hang the report, and a check that fails becomes an "error" finding while the
others still run.
"""

from __future__ import annotations

from typing import Callable, Mapping

import psycopg2
import psycopg2.extensions

from tasks.maintenance.checks.cache import check_cache_hit_rate
from tasks.maintenance.checks.connections import check_connections
from tasks.maintenance.checks.constraints import check_invalid_constraints
from tasks.maintenance.checks.finding import SEVERITIES, Finding, worst_severity
from tasks.maintenance.checks.indexes import (check_duplicate_indexes, check_index_bloat, check_invalid_indexes,
                                              check_unused_indexes)
from tasks.maintenance.checks.queries import check_long_running_queries
from tasks.maintenance.checks.sequences import check_sequences
from tasks.maintenance.checks.slow_queries import check_slow_queries
from tasks.maintenance.checks.vacuum import check_analyze, check_table_sizes, check_vacuum
from tasks.maintenance.checks.wraparound import check_autovacuum_freeze, check_transaction_id_wraparound
from tasks.maintenance.thresholds import thresholds_with

Check = Callable[..., "list[Finding]"]

# Report order: what can take the database down first, housekeeping last (a dict keeps its order).
CHECKS: dict[str, Check] = {
    "transaction_id_wraparound": check_transaction_id_wraparound,
    "autovacuum_freeze": check_autovacuum_freeze,
    "sequences": check_sequences,
    "long_running_queries": check_long_running_queries,
    "connections": check_connections,
    "invalid_indexes": check_invalid_indexes,
    "invalid_constraints": check_invalid_constraints,
    "duplicate_indexes": check_duplicate_indexes,
    "unused_indexes": check_unused_indexes,
    "index_bloat": check_index_bloat,
    "vacuum": check_vacuum,
    "analyze": check_analyze,
    "cache_hit_rate": check_cache_hit_rate,
    "slow_queries": check_slow_queries,
    "table_sizes": check_table_sizes,
}
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 5_000

BEGIN_CHECK = "SET TRANSACTION READ ONLY"
BOUND_CHECK = ("SELECT set_config('statement_timeout', %(statement_ms)s, true), "
               "set_config('lock_timeout', %(lock_ms)s, true)")


def run_checks(conn_or_url, thresholds: Mapping[str, float | int] | None = None, *,
               checks: Mapping[str, Check] | None = None, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
               lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> dict[str, list[Finding]]:
    """Every check in `checks` (default CHECKS), in order; `thresholds` overrides some defaults.

    A connection passed in must not be inside a transaction; it is left as it was found (its
    autocommit setting restored, nothing committed). A URL gets a connection of its own, closed after.
    """
    limits = thresholds_with(dict(thresholds or {}))
    owned = isinstance(conn_or_url, str)
    conn = psycopg2.connect(conn_or_url, application_name="tradeops-maintenance-report") if owned else conn_or_url
    if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        raise ValueError("run_checks needs a connection outside any transaction: each check runs in its own")
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        results = {}
        for name, check in (checks or CHECKS).items():
            results[name] = _run_one(conn, name, check, limits, statement_timeout_ms, lock_timeout_ms)
            if conn.closed and owned:  # a lost connection fails one check, not the rest
                conn = psycopg2.connect(conn_or_url, application_name="tradeops-maintenance-report")
                conn.autocommit = False
        return results
    finally:
        if owned:
            conn.close()
        elif not conn.closed:
            conn.autocommit = autocommit


def _run_one(conn, name: str, check: Check, limits, statement_ms: int, lock_ms: int) -> list[Finding]:
    try:
        with conn.cursor() as cur:
            cur.execute(BEGIN_CHECK)
            cur.execute(BOUND_CHECK, {"statement_ms": str(int(statement_ms)), "lock_ms": str(int(lock_ms))})
            return list(check(cur, limits))
    except Exception as exc:  # noqa: BLE001 - any failure of one check is reported, never fatal to the report
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [Finding(name, "error", name, f"check {name} failed: {type(exc).__name__}: {reason}", None,
                        {"error_type": type(exc).__name__, "error": str(exc).strip()})]
    finally:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg2.Error:  # the connection broke: the next check will say so
                pass


__all__ = ["CHECKS", "SEVERITIES", "Finding", "run_checks", "worst_severity"]
