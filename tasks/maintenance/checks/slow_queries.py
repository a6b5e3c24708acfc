"""Slow queries from pg_stat_statements: frequent and slow on average, the ones worth an index
or a rewrite (PgHero's slow_queries: calls >= 100 and mean >= 20 ms).

The extension must be both loaded (shared_preload_libraries, a restart) and created in this
database; otherwise the check says which step is missing instead of failing.
"""

from __future__ import annotations

from psycopg2 import sql

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows

CHECK = "slow_queries"
HOW_TO_ENABLE = ("add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart PostgreSQL, "
                 "then run CREATE EXTENSION pg_stat_statements in this database")

STATEMENTS_EXTENSION = """
SELECT e.extversion AS version, n.nspname AS schema,
       'pg_stat_statements' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
         AS preloaded
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""
SLOW_QUERIES = """
SELECT s.queryid, r.rolname AS user_name, s.calls, s.mean_exec_time, s.total_exec_time, s.rows,
       left(s.query, 1000) AS query
FROM {schema}.pg_stat_statements s
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.calls >= %(min_calls)s AND s.mean_exec_time >= %(min_mean_ms)s
ORDER BY s.total_exec_time DESC
LIMIT 50
"""


def check_slow_queries(cur, thresholds) -> list[Finding]:
    extension = fetch_rows(cur, STATEMENTS_EXTENSION)
    if not extension:
        return [Finding(CHECK, "info", "pg_stat_statements",
                        f"pg_stat_statements is not installed in this database, so slow queries cannot be "
                        f"listed: {HOW_TO_ENABLE}", None, {"installed": False})]
    extension = extension[0]
    if not extension["preloaded"]:
        return [Finding(CHECK, "info", "pg_stat_statements",
                        "pg_stat_statements is installed but not in shared_preload_libraries, so it collects "
                        "nothing: add it there and restart PostgreSQL", None, {"installed": True, **extension})]
    min_calls, min_mean = thresholds["slow_query_min_calls"], thresholds["slow_query_min_mean_ms"]
    query = sql.SQL(SLOW_QUERIES).format(schema=sql.Identifier(extension["schema"]))
    findings = []
    for row in fetch_rows(cur, query, {"min_calls": min_calls, "min_mean_ms": min_mean}):
        findings.append(Finding(
            CHECK, "warn", f"queryid {row['queryid']}",
            f"query {row['queryid']} averages {row['mean_exec_time']:.1f} ms over {row['calls']:,} calls "
            f"(threshold {min_mean} ms and {min_calls:,} calls)", round(row["mean_exec_time"], 3), row))
    return findings
