"""Queue depth in the deep health check (issue 18; runbook 004 Key Metrics: Queue Depth >500
warning, >1000 critical), on the real sandbox PostgreSQL: its `order_queue`, drained as built, with
a backlog planted above the threshold, drained again, and a queue table that does not exist."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from blocks import DatabaseTarget
from conftest import apply_as_own_environment
from tasks.health import HEALTH_THRESHOLDS, check_database_task
from tasks.health.conditions import CONDITIONS
from tasks.health.result import CheckResult
from tradeops.sandbox import QUEUE_TABLE

T = HEALTH_THRESHOLDS
PLANTED_FROM = 1_000_000  # queue ids of the planted backlog, far above the sandbox's own


@pytest.mark.parametrize("depth, expected", [(0, "pass"), (500, "pass"), (501, "warn"), (1000, "warn"),
                                             (1001, "fail")])
def test_queue_depth_thresholds_are_runbook_004s(depth, expected):
    assert T["queue_depth"].grade(depth) == expected
    assert "runbook 004" in T["queue_depth"].source and ">500" in T["queue_depth"].source


def test_queue_conditions_have_a_severity_and_a_source():
    for check, name in (("queue_depth", "queue_backlog"), ("queue_oldest_age", "queue_stalled")):
        condition = CONDITIONS[check]
        assert (condition.name, condition.severity) == (name, "high")
        assert "runbook 004" in condition.source


def _execute(url: str, statement: str, params=None) -> list[tuple]:
    with closing(psycopg2.connect(url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []


def _queue_checks(url: str, table: str, now: datetime) -> dict[str, CheckResult]:
    return {r.check: r for r in check_database_task.fn("platform", url, "platform-db", T, "SELECT 1",
                                                       "regime_history", "ts", now=now, queue_table=table)}


@pytest.fixture
def planted_backlog(pg_sandbox):
    """1,001 orders waiting in the sandbox's queue (one over runbook 004's critical 1,000), enqueued
    10 minutes ago and later; removed afterwards (the sandbox is the session's)."""
    platform, _ = pg_sandbox
    now = datetime.now(timezone.utc)
    oldest = now - timedelta(minutes=10)
    _execute(platform.database_url,
             f"INSERT INTO {QUEUE_TABLE} (queue_id, order_ref, enqueued_at, processed_at) "
             "SELECT %(base)s + i, 'PLANTED-' || i, %(oldest)s + i * interval '1 millisecond', NULL "
             "FROM generate_series(0, 1000) AS i", {"base": PLANTED_FROM, "oldest": oldest})
    yield platform, now, oldest
    _execute(platform.database_url, f"DELETE FROM {QUEUE_TABLE} WHERE queue_id >= %s", (PLANTED_FROM,))


def test_the_sandbox_queue_as_built_passes(pg_sandbox):
    platform, _ = pg_sandbox
    now = datetime.now(timezone.utc)
    checks = _queue_checks(platform.database_url, QUEUE_TABLE, now)
    assert (checks["queue_depth"].status, checks["queue_depth"].value) == ("pass", 0)
    assert (checks["queue_oldest_age"].status, checks["queue_oldest_age"].value) == ("pass", 0)
    assert "order_queue: nothing waiting" in checks["queue_oldest_age"].detail


def test_a_backlog_above_the_threshold_fails_naming_the_queue_and_its_depth(planted_backlog):
    platform, now, oldest = planted_backlog
    [(waiting, first)] = _execute(platform.database_url,
                                  f"SELECT count(*), min(enqueued_at) FROM {QUEUE_TABLE} WHERE processed_at IS NULL")
    assert waiting == 1001  # counted independently of the check
    checks = _queue_checks(platform.database_url, QUEUE_TABLE, now)
    depth, age = checks["queue_depth"], checks["queue_oldest_age"]
    assert (depth.status, depth.value, depth.unit) == ("fail", 1001, "items")
    assert depth.detail == "queue order_queue: 1001 unprocessed (fail: > 1000 items)"
    assert age.status == "fail" and age.value == pytest.approx((now - first).total_seconds(), abs=1e-3)
    assert age.value == pytest.approx(600, abs=1)

    # processed: every waiting order gets its processed_at, and the same check passes
    _execute(platform.database_url, f"UPDATE {QUEUE_TABLE} SET processed_at = now() WHERE processed_at IS NULL")
    drained = _queue_checks(platform.database_url, QUEUE_TABLE, now)
    assert (drained["queue_depth"].status, drained["queue_depth"].value) == ("pass", 0)
    assert drained["queue_oldest_age"].status == "pass"


def test_a_queue_of_501_warns(planted_backlog):
    platform, now, _ = planted_backlog
    _execute(platform.database_url, f"UPDATE {QUEUE_TABLE} SET processed_at = now() WHERE queue_id >= %s",
             (PLANTED_FROM + 501,))
    depth = _queue_checks(platform.database_url, QUEUE_TABLE, now)["queue_depth"]
    assert (depth.status, depth.value) == ("warn", 501) and "(warn: > 500 items)" in depth.detail


def test_a_missing_queue_table_is_a_clear_finding_not_a_traceback(pg_sandbox):
    platform, _ = pg_sandbox
    results = check_database_task.fn("platform", platform.database_url, "platform-db", T, "SELECT 1",
                                     "regime_history", "ts", queue_table="no_such_queue")
    checks = {r.check: r for r in results}
    assert checks["reachable"].status == "pass" and checks["data_freshness"].status != "skip"
    assert "queue_oldest_age" not in checks  # not measured without the table
    finding = checks["queue_depth"]
    assert finding.status == "fail" and finding.value is None
    assert finding.detail.startswith('queue no_such_queue cannot be read (relation "no_such_queue" does not exist')
    assert "Traceback" not in finding.detail and "\n" not in finding.detail


def test_a_database_without_queue_table_measures_no_queue(pg_sandbox):
    platform, _ = pg_sandbox
    checks = {r.check for r in check_database_task.fn("platform", platform.database_url, "platform-db", T)}
    assert not {"queue_depth", "queue_oldest_age"} & checks


@pytest.mark.prefect  # runs the flow on the session's Prefect server
def test_health_flow_fails_on_the_planted_backlog_naming_queue_and_depth(planted_backlog, pg_sandbox, tmp_path):
    from flows.health_check import health_check

    platform, config = pg_sandbox
    name, _ = apply_as_own_environment(config, tmp_path, "queue", [("remediation.enabled", False)])
    assert DatabaseTarget.load(f"{name}-db-platform").queue_table == "order_queue"  # the sandbox config sets it
    state = health_check(environment=name, return_state=True)
    assert state.is_failed()
    result = state.result(raise_on_failure=False)
    checks = {(c["target"], c["check"]): c for c in result["checks"]}
    assert (checks[("platform", "queue_depth")]["status"], checks[("platform", "queue_depth")]["value"]) == (
        "fail", 1001)
    assert "platform queue_depth: queue order_queue: 1001 unprocessed (fail: > 1000 items)" in state.message
    assert checks[("platform", "queue_oldest_age")]["status"] == "fail"
