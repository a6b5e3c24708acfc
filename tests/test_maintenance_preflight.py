"""The pre-maintenance checklist at its exact boundaries (runbook 001): 10 connections, 20% disk
free, a backup 24 h old each stop maintenance; one less (or more free) lets it run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg2

from tasks.maintenance.preflight import (
    PREFLIGHT_LIMITS, blackout_window, judge_backup_age, judge_connections, judge_critical_work, judge_disk,
    other_connections, verified_backup_age_hours,
)
from tradeops.store import BackupArtifact, BackupSet, session_for

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)


def test_connections_boundary_is_strict():
    assert judge_connections(9).passed
    failed = judge_connections(10)
    assert not failed.passed and failed.line() == "connections: 10 other connection(s) (required: fewer than 10)"


def test_disk_boundary_is_strict():
    assert judge_disk(0.2001, "/data").passed
    assert not judge_disk(0.20, "/data").passed
    assert judge_disk(0.20, "/data").measured == "20.0% free on /data"
    assert not judge_disk(None, "db.example:5432").passed


def test_backup_age_boundary_is_strict(tmp_path):
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    assert verified_backup_age_hours(store, "prod", "db:platform", NOW) is None
    assert not judge_backup_age(None).passed
    with session_for(store) as session:
        for set_id, hours, verified in (("old", 24.0, True), ("unverified", 1.0, False)):
            created = NOW - timedelta(hours=hours)
            session.add(BackupSet(set_id=set_id, environment="prod", kind="daily", status="complete",
                                  created_at=created))
            session.flush()
            session.add(BackupArtifact(set_id=set_id, target="db:platform", kind="pg_dump", path="x", sha256="0" * 64,
                                       size=1, created_at=created, verified_at=created if verified else None))
        session.commit()
    age = verified_backup_age_hours(store, "prod", "db:platform", NOW)
    assert age == 24.0 and not judge_backup_age(age).passed  # the unverified 1 h old dump does not count
    assert judge_backup_age(23.99).passed


def test_critical_work_and_blackout_windows():
    assert judge_critical_work(None, None).passed and judge_critical_work(0, None).passed
    assert not judge_critical_work(2, None).passed
    assert blackout_window(NOW.replace(hour=23, minute=30), ["22:00-04:00"]) == "22:00-04:00"  # across midnight
    assert blackout_window(NOW.replace(hour=4, minute=0), ["22:00-04:00"]) is None  # end exclusive
    assert blackout_window(NOW.replace(hour=14), ["13:30-20:00", "22:00-04:00"]) == "13:30-20:00"
    assert not judge_critical_work(None, "13:30-20:00").passed


def test_other_connections_counts_idle_sessions_too(pg_database):
    extra = [psycopg2.connect(pg_database) for _ in range(12)]
    try:
        with psycopg2.connect(pg_database) as conn, conn.cursor() as cur:
            count = other_connections(cur)
        conn.close()
    finally:
        for conn in extra:
            conn.close()
    assert count == 12 and not judge_connections(count).passed
    assert PREFLIGHT_LIMITS["max_connections"] == 10
