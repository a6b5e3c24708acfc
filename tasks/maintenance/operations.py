"""The maintenance statements, each bounded: `lock_timeout` and `statement_timeout` per statement,
and a run deadline after which no new statement starts.

VACUUM, REINDEX CONCURRENTLY and REFRESH ... CONCURRENTLY cannot run inside a transaction
block: every statement here runs on an autocommit connection.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime

from psycopg2 import sql

from tasks.maintenance.checks.indexes import check_index_bloat
from tasks.maintenance.thresholds import MAINTENANCE_THRESHOLDS

# Which tables to vacuum comes from MAINTENANCE_THRESHOLDS (dead_tuple_ratio, dead_tuple_min,
# stale_analyze_days), the same rules the report flags them by; these bound the statements.
MAINTENANCE_LIMITS = {
    "lock_timeout_ms": 5_000,       # never queue behind trading traffic for long
    "statement_timeout_ms": 900_000,  # one statement: 15 minutes at most
    "time_budget_seconds": 1_800,   # runbook 001: "Duration: ~15-30 minutes"
}

TABLES_NEEDING_WORK = """
SELECT schemaname, relname, n_live_tup, n_dead_tup,
       greatest(last_vacuum, last_autovacuum) AS vacuumed, greatest(last_analyze, last_autoanalyze) AS analyzed
FROM pg_stat_user_tables ORDER BY n_dead_tup DESC, relname
"""
INVALID_REINDEX_LEFTOVERS = """
SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND (c.relname LIKE '%\\_ccnew%' OR c.relname LIKE '%\\_ccold%')
"""
MONTHLY_RANGE_PARTITIONS = """
SELECT pn.nspname, p.relname, a.attname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_partitioned_table pt JOIN pg_class p ON p.oid = pt.partrelid
JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_attribute a ON a.attrelid = p.oid AND a.attnum = pt.partattrs[0]
JOIN pg_inherits i ON i.inhparent = p.oid JOIN pg_class c ON c.oid = i.inhrelid
WHERE pt.partstrat = 'r' AND pt.partnatts = 1
"""
MATERIALIZED_VIEWS = """
SELECT m.schemaname, m.matviewname, m.ispopulated,
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = m.schemaname AND c.relname = m.matviewname AND i.indisunique
                 AND i.indpred IS NULL AND i.indexprs IS NULL) AS has_unique_index
FROM pg_matviews m ORDER BY 1, 2
"""
BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass
class Step:
    statement: str
    seconds: float = 0.0
    outcome: str = "done"  # done | failed: ... | skipped: ...


@dataclass
class Budget:
    """No new statement starts after the deadline; the ones skipped are reported."""
    seconds: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)


def tables_to_maintain(cur, now: datetime, limits: dict = MAINTENANCE_THRESHOLDS) -> list[tuple[str, str, str]]:
    """(schema, table, why) for tables whose dead tuples or staleness call for VACUUM (ANALYZE)."""
    cur.execute(TABLES_NEEDING_WORK)
    chosen = []
    for schema, table, live, dead, _vacuumed, analyzed in cur.fetchall():
        if dead >= limits["dead_tuple_min"] and dead > limits["dead_tuple_ratio"] * max(live, 1):
            chosen.append((schema, table, f"{dead:,} dead tuples for {live:,} live"))
        elif analyzed is None or (now - analyzed).days >= limits["stale_analyze_days"]:
            chosen.append((schema, table, "never analyzed" if analyzed is None else
                           f"last analyzed {(now - analyzed).days} days ago"))
    return chosen


def run_statement(conn, statement: sql.Composable, budget: Budget, limits: dict = MAINTENANCE_LIMITS) -> Step:
    """One bounded statement on an autocommit connection."""
    text = statement.as_string(conn)
    if budget.left() <= 0:
        return Step(text, outcome="skipped: the run's time budget is spent")
    started = time.monotonic()
    timeout_ms = int(min(limits["statement_timeout_ms"], budget.left() * 1000))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                        (str(limits["lock_timeout_ms"]), str(max(timeout_ms, 1))))
            cur.execute(statement)
        return Step(text, time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 - lock or statement timeout, and the like: reported per step
        return Step(text, time.monotonic() - started, f"failed: {str(exc).strip().splitlines()[0]}")


def vacuum_analyze(schema: str, table: str) -> sql.Composable:
    return sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, table))


def reindex_bloated(cur, thresholds: dict = MAINTENANCE_THRESHOLDS) -> list[sql.Composable]:
    """REINDEX INDEX CONCURRENTLY for the indexes the bloat estimate flags (opt-in: it rewrites the
    index while writes go on, and needs the index's size again in free disk)."""
    return [sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(*finding.subject.split(".", 1)))
            for finding in check_index_bloat(cur, thresholds)]


def drop_reindex_leftovers(cur) -> list[sql.Composable]:
    """An interrupted REINDEX INDEX CONCURRENTLY leaves an invalid `_ccnew` (or `_ccold`) index."""
    cur.execute(INVALID_REINDEX_LEFTOVERS)
    return [sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(s, i)) for s, i in cur.fetchall()]


def next_month_partitions(cur, today: date) -> list[sql.Composable]:
    """For each table range-partitioned by month: next month's partition, if it is missing. Its
    bounds are written in the form the existing ones use (same time of day and offset), so the
    new range meets the old ones exactly. Bounds are read in UTC: in another session time zone a
    month starting at 00:00 UTC would print as the evening before."""
    cur.execute("SELECT set_config('TimeZone', 'UTC', false)")
    cur.execute(MONTHLY_RANGE_PARTITIONS)
    bounds: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, _column, bound in cur.fetchall():
        match = BOUND.search(bound or "")
        if match:
            bounds.setdefault((schema, table), []).append(match.groups())
    start = _add_month(today.replace(day=1))
    statements = []
    for (schema, table), ranges in bounds.items():
        days = [(date.fromisoformat(lo[:10]), date.fromisoformat(hi[:10])) for lo, hi in ranges]
        monthly = all(lo.day == 1 and _add_month(lo) == hi for lo, hi in days)
        if not monthly or any(lo <= start < hi for lo, hi in days):
            continue
        suffix = ranges[0][0][10:]  # e.g. " 00:00:00+00"
        name = f"{table}_{start:%Y_%m}"
        statements.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(schema, name), sql.Identifier(schema, table),
            sql.Literal(f"{start.isoformat()}{suffix}"), sql.Literal(f"{_add_month(start).isoformat()}{suffix}")))
    return statements


def refresh_materialized_views(cur) -> list[sql.Composable]:
    """CONCURRENTLY (readers keep reading) where the view is populated and has a unique index."""
    cur.execute(MATERIALIZED_VIEWS)
    return [sql.SQL("REFRESH MATERIALIZED VIEW {}{}").format(
        sql.SQL("CONCURRENTLY " if populated and unique else ""), sql.Identifier(schema, name))
        for schema, name, populated, unique in cur.fetchall()]


def _add_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
