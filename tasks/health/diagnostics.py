"""The diagnostic level (runbook 001 "Check Levels: Diagnostic, on demand"; run on escalation too):
what an on-call engineer looks at first. Nothing is graded; the report shows it.

- slow queries: the longest-running active statements, with their plan (EXPLAIN, never ANALYZE:
  diagnosing must not run them again) when they are a SELECT;
- lock graph: who waits on whom (pg_blocking_pids);
- top tables by total size;
- the newest error lines of each log folder.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.databases import connect, is_sqlite
from tasks.reporting import markdown_table

SLOW_QUERIES = """
SELECT pid, extract(epoch FROM now() - query_start)::float, left(query, 2000)
FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid() AND datname = current_database() AND backend_type = 'client backend'
ORDER BY query_start LIMIT %s
"""
LOCK_GRAPH = """
SELECT pid, unnest(pg_blocking_pids(pid)) AS blocked_by, left(coalesce(query, ''), 200)
FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0
"""
TOP_TABLES = """
SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2 DESC LIMIT %s
"""
ERROR_WORDS = ("ERROR", "CRITICAL", "FATAL", "Traceback")


@dataclass(frozen=True)
class SlowQuery:
    pid: int
    seconds: float
    query: str
    plan: str = ""


@dataclass(frozen=True)
class DatabaseDiagnostics:
    target: str
    slow_queries: list[SlowQuery] = field(default_factory=list)
    lock_waits: list[tuple[int, int, str]] = field(default_factory=list)  # (pid, blocked by, its query)
    top_tables: list[tuple[str, int, int]] = field(default_factory=list)  # (table, bytes, rows estimate)
    error: str = ""


def _rows(conn: Any, sql: str, params: tuple = ()) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _plan(conn: Any, query: str) -> str:
    if not query.lstrip().lower().startswith("select"):
        return ""
    try:
        return "\n".join(row[0] for row in _rows(conn, f"EXPLAIN {query}"))
    except Exception as exc:  # noqa: BLE001 - a statement with parameters cannot be explained alone
        conn.rollback() if not conn.autocommit else None
        return f"(no plan: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"


def diagnose_database(target: str, url: str, limit: int = 5) -> DatabaseDiagnostics:
    if is_sqlite(url):
        return DatabaseDiagnostics(target, error="SQLite: no sessions, locks or plans to show")
    try:
        with connect(url) as conn:
            slow = [SlowQuery(pid, seconds, query, _plan(conn, query))
                    for pid, seconds, query in _rows(conn, SLOW_QUERIES, (limit,))]
            return DatabaseDiagnostics(target, slow, [tuple(r) for r in _rows(conn, LOCK_GRAPH)],
                                       [tuple(r) for r in _rows(conn, TOP_TABLES, (10,))])
    except Exception as exc:  # noqa: BLE001 - the diagnosis says it could not look
        return DatabaseDiagnostics(target, error=str(exc).strip().splitlines()[0] if str(exc).strip() else
                                   type(exc).__name__)


def recent_error_lines(folder: str, pattern: str, limit: int = 20) -> list[str]:
    """The last `limit` error lines of the newest log file in `folder`."""
    files = [p for p in Path(folder).glob(pattern) if p.is_file()]
    if not files:
        return []
    newest = max(files, key=lambda p: p.stat().st_mtime)
    found: deque[str] = deque(maxlen=limit)
    with open(newest, errors="replace") as handle:
        for line in handle:
            if any(word in line for word in ERROR_WORDS):
                found.append(f"{newest.name}: {line.rstrip()[:300]}")
    return list(found)


def diagnostics_markdown(databases: list[DatabaseDiagnostics], error_lines: dict[str, list[str]]) -> str:
    parts = ["## Diagnostics"]
    for db in databases:
        parts.append(f"### Database {db.target}")
        if db.error:
            parts.append(db.error)
            continue
        parts.append("Slow queries:\n\n" + (markdown_table(["pid", "running (s)", "query"],
                                                           [(q.pid, f"{q.seconds:.1f}", q.query[:200])
                                                            for q in db.slow_queries])
                                            if db.slow_queries else "none running"))
        parts += [f"Plan of pid {q.pid}:\n\n```\n{q.plan}\n```" for q in db.slow_queries if q.plan]
        parts.append("Lock graph (waiting pid → blocking pid):\n\n" + (
            markdown_table(["waiting", "blocked by", "waiting query"], db.lock_waits) if db.lock_waits else "no waits"))
        parts.append("Top tables:\n\n" + markdown_table(["table", "size", "rows (estimate)"],
                                                       [(t, f"{b / 2**20:.1f} MiB", r) for t, b, r in db.top_tables]))
    for target, lines in error_lines.items():
        parts.append(f"### Recent error lines: {target}\n\n" + ("\n".join(f"    {line}" for line in lines)
                                                               if lines else "none"))
    return "\n\n".join(parts)
