"""db-maintenance: weekly PostgreSQL maintenance that is safe unattended (runbooks 001 "Database
Optimization", 002 "Database Maintenance", 004 "Weekly Maintenance"). Sundays 03:00 UTC.

For every database target, holding its writer lease (a backup dumping it is waited for, up to
the lock timeout, then the database is refused; a backup waits for the maintenance the same way):
1. Pre-flight (runbook 001 checklist): a verified backup younger than 24 h, fewer than 10 other
   connections, no critical work (probe, blackout windows), more than 20% disk free. Any item
   failing: not one maintenance statement runs for that database, and the report says which
   item and what was measured.
2. Maintenance, each statement under `lock_timeout`/`statement_timeout` and a run time budget:
   drop invalid `_ccnew` leftovers of an interrupted REINDEX CONCURRENTLY; VACUUM (ANALYZE) the
   tables chosen by dead tuples and staleness; create next month's partitions; refresh
   materialized views (CONCURRENTLY where possible). SQLite: integrity_check, ANALYZE, VACUUM,
   PRAGMA optimize.
3. Post-flight: connections, no invalid index left, the probe query answers.
Report: the checklist, every statement with its time, the post-flight, per database.
"""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import urlparse

import psycopg2
from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.databases import connect, is_sqlite, libpq_dsn, scalar, sqlite_path
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import TargetBusy, target_lock, writer_lock
from tasks.maintenance.operations import (
    MAINTENANCE_LIMITS, Budget, Step, drop_reindex_leftovers, next_month_partitions, refresh_materialized_views,
    reindex_bloated, run_statement, tables_to_maintain, vacuum_analyze,
)
from tasks.maintenance.preflight import (
    PreflightItem, blackout_window, critical_work_rows, disk_free_ratio, judge_backup_age, judge_connections,
    judge_critical_work, judge_disk, other_connections, verified_backup_age_hours,
)
from tasks.maintenance.checks import run_checks
from tasks.maintenance.report import publish_maintenance_report, report_markdown, results_as_rows
from tasks.maintenance.thresholds import thresholds_with
from tasks.reporting import report_denial
from tasks.access import AccessDenied, require_permission
from tradeops.store.records import append_audit
from tradeops.clock import utcnow

INVALID_INDEXES = "SELECT count(*) FROM pg_index WHERE NOT indisvalid"


@flow(name="db-maintenance", **FAILURE_HOOKS)
def db_maintenance(environment: str = "default") -> State:
    env = load_environment(environment)
    try:
        actor = require_permission(env, permission_for("db-maintenance"), "db_maintenance")
    except AccessDenied as exc:
        return report_denial("db-maintenance", env.name, env.store_url, f"Database maintenance: {env.name}", str(exc),
                             reports_dir=str(env.block.output_dir("reports")))
    results, failures = [], {}
    for db in env.block.databases():
        target = f"db:{db.target}"
        try:
            with target_lock(writer_lock(env.name, target, env.store_url), f"the maintenance of {target}"):
                result = maintain_database(env, db, actor.user)
        except TargetBusy as exc:
            result = {"target": target, "preflight": [], "steps": [], "postflight": [],
                      "failure": f"not maintained, nothing was run: {exc}"}
        results.append(result)
        if result["failure"]:
            failures[f"db:{db.target}"] = result["failure"]
    return publish_maintenance_report(env, results, failures)


def maintain_database(env: LoadedEnvironment, db, user: str) -> dict:
    logger = get_run_logger()
    target, url = f"db:{db.target}", db.url.get_secret_value()
    now = utcnow()
    result = {"target": target, "preflight": [], "steps": [], "postflight": [], "failure": None}
    try:
        checklist = preflight(env, db, url, now)
    except (psycopg2.Error, OSError) as exc:
        result["failure"] = f"pre-flight could not run: {str(exc).strip().splitlines()[0]}"
        return result
    result["preflight"] = [vars(item) for item in checklist]
    blocked = [item for item in checklist if not item.passed]
    if blocked:
        result["failure"] = "pre-flight failed, nothing was run: " + "; ".join(item.line() for item in blocked)
        logger.error("%s: %s", target, result["failure"])
        return result
    thresholds = thresholds_with(env.block.maintenance_thresholds)
    steps = (maintain_sqlite(url) if is_sqlite(url)
             else maintain_postgres(url, now, thresholds, env.block.maintenance_reindex_bloated_indexes))
    result["steps"] = [vars(step) | {"seconds": round(step.seconds, 3)} for step in steps]
    after = postflight(db, url)
    result["postflight"] = [vars(item) for item in after]
    if not is_sqlite(url):  # the report after the work: what is left to look at
        findings = run_checks(libpq_dsn(url), thresholds)
        result["findings"] = results_as_rows(findings)
        result["report"] = report_markdown(findings, title="Health report after maintenance", level=3)
    problems = [s.statement + ": " + s.outcome for s in steps if s.outcome != "done"]
    problems += [item.line() for item in after if not item.passed]
    if problems:
        result["failure"] = "; ".join(problems)
    append_audit(env.store_url, "db_maintenance", user, success=not problems,
                 details={"target": target, "statements": [s.statement for s in steps], "problems": problems})
    return result


def preflight(env: LoadedEnvironment, db, url: str, now: datetime) -> list[PreflightItem]:
    """The runbook 001 checklist for one database, measured now."""
    items = [judge_backup_age(verified_backup_age_hours(env.store_url, env.name, f"db:{db.target}", now))]
    blackout = blackout_window(now, db.maintenance_blackout)
    if is_sqlite(url):
        path = sqlite_path(url)
        items += [judge_connections(0), judge_critical_work(None, blackout),
                  judge_disk(disk_free_ratio(path), path)]
        return items
    with connect(url) as conn, conn.cursor() as cur:
        items.append(judge_connections(other_connections(cur)))
        items.append(judge_critical_work(critical_work_rows(cur, db.critical_work_probe), blackout))
        directory = _data_directory(cur, url)
        items.append(judge_disk(disk_free_ratio(directory) if directory else None,
                                directory or f"the server of {db.display_url()}"))
    return items


def _data_directory(cur, url: str) -> str | None:
    """The server's data directory, when the server is on this machine (loopback or socket)."""
    host = urlparse(libpq_dsn(url)).hostname
    if host not in (None, "", "localhost", "127.0.0.1", "::1"):
        return None
    try:
        cur.execute("SHOW data_directory")
        return cur.fetchone()[0]
    except psycopg2.Error:  # needs superuser or pg_read_all_settings
        cur.connection.rollback()
        return None


def maintain_postgres(url: str, now: datetime, thresholds: dict, reindex: bool = False) -> list[Step]:
    budget = Budget(MAINTENANCE_LIMITS["time_budget_seconds"])
    with connect(url) as conn:  # autocommit: VACUUM and CONCURRENTLY refuse transaction blocks
        with conn.cursor() as cur:
            statements = drop_reindex_leftovers(cur)
            statements += [vacuum_analyze(schema, table) for schema, table, _ in tables_to_maintain(cur, now, thresholds)]
            if reindex:
                statements += reindex_bloated(cur, thresholds)
            statements += next_month_partitions(cur, now.date())
            statements += refresh_materialized_views(cur)
        return [run_statement(conn, statement, budget) for statement in statements]


def maintain_sqlite(url: str) -> list[Step]:
    steps = []
    with connect(url) as conn:
        conn.isolation_level = None  # VACUUM cannot run inside a transaction
        for statement in ("PRAGMA integrity_check", "ANALYZE", "VACUUM", "PRAGMA optimize"):
            started = time.monotonic()
            try:
                answer = conn.execute(statement).fetchall()
                outcome = "done" if statement != "PRAGMA integrity_check" or answer == [("ok",)] else \
                    f"failed: {answer[0][0]}"
            except Exception as exc:  # noqa: BLE001
                outcome = f"failed: {exc}"
            steps.append(Step(statement, time.monotonic() - started, outcome))
    return steps


def postflight(db, url: str) -> list[PreflightItem]:
    """Runbook 001 "Post-Maintenance Verification": connections, indexes, the probe query."""
    with connect(url) as conn:
        try:
            scalar(conn, db.probe_query)
            probe = PreflightItem("probe query", True, "answers", db.probe_query)
        except Exception as exc:  # noqa: BLE001
            probe = PreflightItem("probe query", False, f"fails: {exc}", db.probe_query)
        if is_sqlite(url):
            return [probe]
        with conn.cursor() as cur:
            connections = judge_connections(other_connections(cur))
        invalid = scalar(conn, INVALID_INDEXES)
    return [probe, connections,
            PreflightItem("invalid indexes", invalid == 0, f"{invalid} invalid index(es)", "none left")]
