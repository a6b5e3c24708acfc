"""Database checks: reachable and answering its probe, connections in use, data freshness, queue
depth (tasks/health/queue.py).

Each check is a named query, PgHero style.
"""

from __future__ import annotations

from datetime import datetime, timezone

from tasks.databases import connect, is_sqlite, scalar
from tasks.health.queue import check_queue
from tasks.health.result import CheckResult, as_utc, failed, graded, skipped
from tasks.health.sessions import list_sessions, terminable
from tasks.health.thresholds import Threshold

CONNECTIONS_IN_USE = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
MAX_CONNECTIONS = "SELECT current_setting('max_connections')::int"
NEWEST_ROW = "SELECT max({column}) FROM {table}"


def check_database(target: str, url: str, display_url: str, thresholds: dict[str, Threshold],
                   probe_query: str = "SELECT 1", freshness_table: str | None = None,
                   freshness_column: str = "ts", now: datetime | None = None, shallow: bool = False,
                   queue_table: str | None = None) -> list[CheckResult]:
    """Reachability first; when the database does not answer, the other checks are not attempted.
    `shallow`: reachability only (the 30-second check of runbook 001). `queue_table`: the platform's
    queue, whose depth and oldest item are graded (none: not measured)."""
    now = now or datetime.now(timezone.utc)
    try:
        with connect(url) as conn:
            scalar(conn, probe_query)
            results = [CheckResult(target, "reachable", "pass", None, None, f"{display_url} answers its probe")]
            if shallow:
                return results
            if is_sqlite(url):
                results.append(skipped(target, "connections", "SQLite has no connection limit"))
            else:
                in_use, limit = scalar(conn, CONNECTIONS_IN_USE), scalar(conn, MAX_CONNECTIONS)
                results.append(graded(target, "connections", thresholds["connections_used_pct"],
                                      100.0 * in_use / limit, f"{in_use} of max_connections {limit} in use"))
                results.append(_sessions_holding_up(conn, target, thresholds["idle_in_transaction_seconds"]))
            results.append(_freshness(conn, target, thresholds["data_freshness_minutes"],
                                      freshness_table, freshness_column, now))
            if queue_table:
                results += check_queue(conn, target, queue_table, thresholds["queue_depth"],
                                       thresholds["queue_oldest_age_seconds"], now)
            return results
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable", said plainly
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [failed(target, "reachable", f"{display_url} does not answer: {reason}")]


def _sessions_holding_up(conn, target: str, threshold: Threshold) -> CheckResult:
    """The longest a session other than tradeops' and replication's has been idle in a transaction,
    or blocking others inside one."""
    worst, who = 0.0, None
    for session in list_sessions(conn):
        if terminable(session) is not None:
            continue
        held = max(session.state_seconds if session.state.startswith("idle in transaction") else 0.0,
                   session.xact_seconds if session.blocking else 0.0)
        if held > worst:
            worst, who = held, session
    what = who.describe() if who else "no session idle in a transaction or blocking others"
    return graded(target, "idle_in_transaction", threshold, worst, what)


def _freshness(conn, target: str, threshold: Threshold, table: str | None, column: str,
               now: datetime) -> CheckResult:
    if not table:
        return skipped(target, "data_freshness", "no freshness_table configured")
    try:
        newest = scalar(conn, NEWEST_ROW.format(table=table, column=column))
    except Exception as exc:  # noqa: BLE001
        return failed(target, "data_freshness", f"SELECT max({column}) FROM {table} failed: {exc}".strip())
    if newest is None:
        return failed(target, "data_freshness", f"{table} has no rows")
    age_min = (now - as_utc(newest)).total_seconds() / 60
    return graded(target, "data_freshness", threshold, age_min,
                  f"newest {table}.{column} is {age_min:.0f} min old")
