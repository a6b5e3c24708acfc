"""db-maintenance on the PostgreSQL sandbox: the pre-flight stops it before any statement, and with
a fresh verified backup it vacuums the tables it chose and creates next month's partition."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import psycopg2
import pytest

from flows.daily_backup import daily_backup
from flows.db_maintenance import db_maintenance
from flows.verify_backups import verify_backups
from tasks.maintenance.operations import _add_month

STATS = ("SELECT relname, last_vacuum, last_analyze FROM pg_stat_user_tables ORDER BY relname")


def stats(url: str) -> dict:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(STATS)
        rows = {name: (vacuumed, analyzed) for name, vacuumed, analyzed in cur.fetchall()}
    conn.close()
    return rows


@pytest.fixture
def dead_tuples(backup_env):
    """Dead tuples in regime_history, autovacuum kept off it so only maintenance can clear them."""
    url = backup_env.platform.database_url
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("ALTER TABLE regime_history SET (autovacuum_enabled = false)")
    cur.execute("UPDATE regime_history SET ts = ts")
    for _ in range(50):  # statistics reach pg_stat_user_tables within a second or so
        cur.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'regime_history'")
        if cur.fetchone()[0] >= 1000:
            break
        time.sleep(0.2)
    yield url
    cur.execute("ALTER TABLE regime_history RESET (autovacuum_enabled)")
    conn.close()


def test_too_many_connections_stop_maintenance_before_any_statement(backup_env, dead_tuples):
    assert daily_backup(environment=backup_env.name, return_state=True).is_completed()
    assert verify_backups(environment=backup_env.name, return_state=True).is_completed()
    before = stats(dead_tuples)
    extra = [psycopg2.connect(dead_tuples) for _ in range(12)]
    try:
        state = db_maintenance(environment=backup_env.name, return_state=True)
    finally:
        for conn in extra:
            conn.close()
    assert state.is_failed()
    # 12 extra sessions and the fixture's own: all counted, idle or not
    assert "db:platform: pre-flight failed, nothing was run: connections: 13 other connection(s)" in state.message
    result = state.result(raise_on_failure=False)
    assert result["databases"][0]["steps"] == []
    assert stats(dead_tuples) == before  # not one VACUUM or ANALYZE ran


def test_no_verified_backup_stops_maintenance(backup_env):
    state = db_maintenance(environment=backup_env.name, return_state=True)
    assert state.is_failed() and "verified backup: no verified backup of this database" in state.message


def test_maintenance_vacuums_chosen_tables_and_adds_next_months_partition(backup_env, dead_tuples):
    assert daily_backup(environment=backup_env.name, return_state=True).is_completed()
    assert verify_backups(environment=backup_env.name, return_state=True).is_completed()
    before = stats(dead_tuples)
    state = db_maintenance(environment=backup_env.name, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()["databases"][0]
    after = stats(dead_tuples)
    vacuumed = [s["statement"] for s in result["steps"] if s["statement"].startswith("VACUUM")]
    assert 'VACUUM (ANALYZE) "public"."regime_history"' in vacuumed
    assert after["regime_history"][0] != before["regime_history"][0]  # last_vacuum moved
    assert after["regime_history"][1] != before["regime_history"][1]  # last_analyze moved
    nxt = _add_month(datetime.now(timezone.utc).date().replace(day=1))
    with psycopg2.connect(dead_tuples) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"public.trades_{nxt:%Y_%m}",))
        assert cur.fetchone()[0] is not None
    conn.close()
    assert any(s["statement"].startswith("REFRESH MATERIALIZED VIEW CONCURRENTLY") for s in result["steps"])
    assert all(item["passed"] for item in result["postflight"])
    # the health report lists what the sandbox planted
    findings = {(f["check"], f["subject"]) for f in result["findings"]}
    assert ("unused_indexes", "public.idx_positions_unused") in findings
    assert any(check == "duplicate_indexes" and "idx_trades_experiment" in subject for check, subject in findings)
    assert "#### duplicate_indexes" in result["report"] and "idx_positions_unused" in result["report"]


def test_maintenance_waits_for_the_dump_of_its_database_and_refuses_after_the_lock_timeout(backup_env, dead_tuples,
                                                                                            monkeypatch):
    """The backup task holds the database's writer lease while pg_dump runs: maintenance waits for
    it, never runs inside the dump window, and gives up naming the holder when it lasts too long."""
    import threading

    from tasks.locks import target_lock, writer_lock

    assert daily_backup(environment=backup_env.name, return_state=True).is_completed()
    assert verify_backups(environment=backup_env.name, return_state=True).is_completed()
    dump = writer_lock(backup_env.name, "db:platform", backup_env.store)

    monkeypatch.setenv("TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS", "2")
    with target_lock(dump, "backup-db:platform of a daily backup"):
        before = stats(backup_env.platform.database_url)
        state = db_maintenance(environment=backup_env.name, return_state=True)
        assert stats(backup_env.platform.database_url) == before  # not one statement ran
    assert state.is_failed()
    assert ("db:platform: not maintained, nothing was run: the maintenance of db:platform is busy: held by "
            "backup-db:platform of a daily backup") in state.message

    monkeypatch.setenv("TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS", "600")
    released_at: list[datetime] = []
    held = threading.Event()

    def dumping() -> None:
        with target_lock(dump, "backup-db:platform of a daily backup"):
            held.set()
            time.sleep(3)
            released_at.append(datetime.now(timezone.utc))

    writer = threading.Thread(target=dumping)
    writer.start()
    held.wait(10)
    before = stats(dead_tuples)
    state = db_maintenance(environment=backup_env.name, return_state=True)
    writer.join()
    assert state.is_completed(), state.message
    vacuumed = {table: at for table, (at, _) in stats(dead_tuples).items() if at != before.get(table, (None,))[0]}
    assert "regime_history" in vacuumed
    assert all(at >= released_at[0] for at in vacuumed.values()), (vacuumed, released_at)  # after the dump
