"""Long-running queries: a statement running for minutes holds locks and the xmin horizon back,
so vacuum cannot clean up behind it.

Scoped to the connected database, as PgHero's long_running_queries. Autovacuum workers and WAL
senders run long by design: they are listed as "info", not "warn".
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

CHECK = "long_running_queries"

LONG_RUNNING_QUERIES = """
SELECT pid, state, backend_type, usename AS user_name, application_name, client_addr::text AS client_addr,
       wait_event_type, wait_event, query_start,
       extract(epoch FROM clock_timestamp() - query_start)::float8 AS duration_seconds,
       left(query, 500) AS query
FROM pg_stat_activity
WHERE state <> 'idle'
  AND pid <> pg_backend_pid()
  AND datname = current_database()
  AND query_start IS NOT NULL
  AND clock_timestamp() - query_start >= make_interval(secs => %(min_seconds)s)
ORDER BY query_start
"""
EXPECTED_LONG = ("autovacuum worker", "walsender")


def check_long_running_queries(cur, thresholds) -> list[Finding]:
    limit = thresholds["long_running_query_seconds"]
    findings = []
    for row in fetch_rows(cur, LONG_RUNNING_QUERIES, {"min_seconds": limit}):
        expected = row["backend_type"] in EXPECTED_LONG or (row["query"] or "").startswith("autovacuum:")
        seconds = row["duration_seconds"]
        findings.append(Finding(
            CHECK, "info" if expected else "warn", f"pid {row['pid']}",
            f"{row['backend_type']} pid {row['pid']} ({row['state']}) has run its statement for "
            f"{seconds:.0f} s (threshold {limit} s)", round(seconds, 1), row))
    return findings
