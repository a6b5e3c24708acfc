"""Connections: the total against PgHero's limit, by state, and sessions idle in a transaction,
which hold locks and keep vacuum from removing dead rows for as long as they idle.

Counts are cluster-wide (connections are a server resource); client backends only.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

CHECK = "connections"

CONNECTIONS_BY_STATE = """
SELECT coalesce(state, 'unknown') AS state, count(*)::int AS connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
ORDER BY 2 DESC, 1
"""
MAX_CONNECTIONS = "SELECT current_setting('max_connections')::int AS max_connections"
IDLE_IN_TRANSACTION = """
SELECT pid, state, datname AS database, usename AS user_name, application_name, client_addr::text AS client_addr,
       xact_start, state_change,
       extract(epoch FROM clock_timestamp() - state_change)::float8 AS idle_seconds,
       left(query, 500) AS last_query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND pid <> pg_backend_pid()
  AND clock_timestamp() - state_change >= make_interval(secs => %(min_seconds)s)
ORDER BY state_change
"""


def check_connections(cur, thresholds) -> list[Finding]:
    by_state = {row["state"]: row["connections"] for row in fetch_rows(cur, CONNECTIONS_BY_STATE)}
    max_connections = fetch_rows(cur, MAX_CONNECTIONS)[0]["max_connections"]
    total, limit = sum(by_state.values()), thresholds["total_connections_max"]
    states = ", ".join(f"{count} {state}" for state, count in by_state.items()) or "none"
    findings = [Finding(
        CHECK, "warn" if total >= limit else "ok", "total",
        f"{total} client connections ({states}) of max_connections {max_connections} (threshold {limit})",
        total, {"by_state": by_state, "max_connections": max_connections})]
    idle_limit = thresholds["idle_in_transaction_seconds"]
    for row in fetch_rows(cur, IDLE_IN_TRANSACTION, {"min_seconds": idle_limit}):
        findings.append(Finding(
            CHECK, "warn", f"pid {row['pid']}",
            f"pid {row['pid']} ({row['user_name']}@{row['database']}) has been {row['state']} for "
            f"{row['idle_seconds']:.0f} s (threshold {idle_limit} s)", round(row["idle_seconds"], 1), row))
    return findings
