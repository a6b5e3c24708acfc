"""Tables needing VACUUM (dead tuples) or ANALYZE (stale planner statistics), and the largest tables.

Dead tuples are measured against live ones, as autovacuum does (and tasks/maintenance/operations.py);
both the ratio and the count must reach their thresholds, so tiny tables stay autovacuum's job.
A table that is empty and unmodified since its last analyze has nothing to analyze and is skipped.
"""

from __future__ import annotations

from tasks.maintenance.checks.finding import Finding
from tasks.maintenance.checks.rows import fetch_rows, human_bytes

TABLE_MAINTENANCE = """
SELECT s.schemaname AS schema, s.relname AS table, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       s.n_dead_tup::float8 / greatest(s.n_live_tup, 1) AS dead_ratio,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       greatest(s.last_analyze, s.last_autoanalyze) AS analyzed_at,
       coalesce((SELECT option_value::bool FROM pg_options_to_table(c.reloptions)
                 WHERE option_name = 'autovacuum_enabled'), current_setting('autovacuum')::bool) AS autovacuum,
       pg_total_relation_size(s.relid) AS total_bytes,
       clock_timestamp() AS measured_at
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
ORDER BY s.n_dead_tup DESC, 1, 2
"""
LARGEST_TABLES = """
SELECT n.nspname AS schema, c.relname AS table, pg_total_relation_size(c.oid) AS total_bytes,
       pg_relation_size(c.oid) AS table_bytes, pg_indexes_size(c.oid) AS index_bytes,
       c.reltuples::bigint AS estimated_rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast' AND NOT pg_is_other_temp_schema(n.oid)
ORDER BY total_bytes DESC, 1, 2
LIMIT %(top)s
"""


def check_vacuum(cur, thresholds) -> list[Finding]:
    ratio, minimum = thresholds["dead_tuple_ratio"], thresholds["dead_tuple_min"]
    findings = []
    for row in fetch_rows(cur, TABLE_MAINTENANCE):
        if row["n_dead_tup"] >= minimum and row["dead_ratio"] >= ratio:
            subject = f"{row['schema']}.{row['table']}"
            findings.append(Finding(
                "vacuum", "warn", subject,
                f"{subject} has {row['n_dead_tup']:,} dead tuples for {row['n_live_tup']:,} live "
                f"({row['dead_ratio']:.0%}; threshold {ratio:.0%} and {minimum:,} dead)"
                + ("" if row["autovacuum"] else ", and autovacuum is off for it"),
                round(row["dead_ratio"], 4), row))
    return findings


def check_analyze(cur, thresholds) -> list[Finding]:
    days = thresholds["stale_analyze_days"]
    findings = []
    for row in fetch_rows(cur, TABLE_MAINTENANCE):
        analyzed_at, now = row["analyzed_at"], row["measured_at"]
        if row["n_live_tup"] == 0 and row["n_dead_tup"] == 0 and row["n_mod_since_analyze"] == 0:
            continue
        age_days = None if analyzed_at is None else (now - analyzed_at).total_seconds() / 86400
        if age_days is not None and age_days < days:
            continue
        subject = f"{row['schema']}.{row['table']}"
        when = "has never been analyzed" if age_days is None else f"was last analyzed {age_days:.1f} days ago"
        findings.append(Finding(
            "analyze", "warn", subject,
            f"{subject} {when}, {row['n_mod_since_analyze']:,} rows modified since (threshold {days} days)",
            None if age_days is None else round(age_days, 2), row))
    return findings


def check_table_sizes(cur, thresholds) -> list[Finding]:
    """Not a problem in itself: the weekly report lists the largest tables so growth shows week to week."""
    return [Finding("table_sizes", "ok", f"{row['schema']}.{row['table']}",
                    f"{row['schema']}.{row['table']} takes {human_bytes(row['total_bytes'])} with indexes and TOAST "
                    f"(largest {thresholds['table_sizes_top']} listed)", row["total_bytes"], row)
            for row in fetch_rows(cur, LARGEST_TABLES, {"top": thresholds["table_sizes_top"]})]
