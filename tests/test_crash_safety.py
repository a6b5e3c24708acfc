"""kill -9 at named points of daily-backup (issues 21 and 22): a killed run never leaves a set that
verify-backups or restore would take as complete, and the next run starts at once (the killed
run's lease is taken over, not waited out) and completes, sweeping what the killed one left.

Each run is a real `tradeops run daily-backup` process on the session's Prefect server. Most points
are reached through TRADEOPS_KILL_AT (tasks/crash_points.py); mid-dump is reached from outside: a
large table keeps pg_dump copying, and the process group is killed while its COPY runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
from sqlmodel import select

from flows.restore import restore
from flows.verify_backups import verify_backups
from tasks.backup.catalog import chosen_set
from tasks.crash_points import CRASH_POINTS
from tradeops.store import BackupSet, session_for

from conftest import cli_env, run_flow

TRADEOPS = str(Path(sys.executable).parent / "tradeops")
BACKUP_POINTS = [p for p in CRASH_POINTS if p.startswith("backup:")]


def backup_command(env) -> list[str]:
    return [TRADEOPS, "run", "daily-backup", "--set", f"environment={env.name}", "--json"]


def sets(env) -> dict[str, str]:
    with session_for(env.store) as session:
        return {s.set_id: s.status for s in session.exec(select(BackupSet)).all()}


def set_folders(env) -> list[str]:
    root = env.data_dir / "backups" / env.name
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and p.name != "emergency") \
        if root.is_dir() else []


def assert_nothing_looks_complete(env, before: dict[str, str]) -> tuple[str, str]:
    """The killed run's set is not complete in the catalog, or (killed mid-upload) complete
    locally but refused by verify-backups, so never chosen by a restore."""
    new = {set_id: status for set_id, status in sets(env).items() if set_id not in before}
    assert len(new) == 1, new
    (set_id, status), = new.items()
    if status == "complete":
        state, result = run_flow(verify_backups, environment=env.name)
        assert state.is_failed(), "verify-backups took a half-copied set as good"
        assert f"{set_id} set files" in result["failures"]
    else:
        assert status == "pending"
    assert chosen_set(env.store, env.name) is None or chosen_set(env.store, env.name).set_id in before
    return set_id, status


def run_next_backup_at_once(env, killed: str) -> dict:
    """The next run, allowed only 20 s to take the killed run's leases."""
    done = subprocess.run(backup_command(env), env=cli_env(TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS="20"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"after a kill at {killed}: {done.stderr[-3000:]}"
    return sets(env)


@pytest.mark.parametrize("point", BACKUP_POINTS)
def test_a_backup_killed_at_a_named_point_leaves_nothing_that_looks_complete(backup_env, point):
    before = sets(backup_env)
    killed = subprocess.run(backup_command(backup_env), env=cli_env(TRADEOPS_KILL_AT=point), capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    killed_set, status = assert_nothing_looks_complete(backup_env, before)

    after = run_next_backup_at_once(backup_env, point)
    completed = [s for s, st in after.items() if s not in before and s != killed_set and st == "complete"]
    assert len(completed) == 1
    if status == "pending":
        assert after[killed_set] == "abandoned"
        assert killed_set not in set_folders(backup_env)  # swept, whether it was staging or renamed
    root = backup_env.data_dir / "backups" / backup_env.name
    assert not list(root.glob(".*.partial")) and not list(root.glob(".*.deleting"))
    state, _ = run_flow(verify_backups, environment=backup_env.name)
    assert state.is_completed(), state.message
    state, result = run_flow(restore, environment=backup_env.name, targets=["git:momentum_alpha"])
    assert state.is_completed(), state.message
    assert result["set_id"] not in before and after[result["set_id"]] == "complete"


BULK_ROWS = 1_000_000  # about 160 MB: pg_dump copies it for seconds, long enough to be caught at it


def test_a_backup_killed_mid_dump_is_followed_at_once_by_one_that_completes(backup_env):
    """A table large enough that pg_dump copies it for seconds; the run is killed while pg_dump's
    COPY runs, pg_dump included. (A lock held on a table does not get there: the backup's own
    table listing waits for it before pg_dump starts.)"""
    url = backup_env.platform.database_url
    _admin(url, "CREATE TABLE crash_bulk AS SELECT g AS id, repeat(md5(g::text), 4) AS pad "
                f"FROM generate_series(1, {BULK_ROWS}) g")
    try:
        before = sets(backup_env)
        process = subprocess.Popen(backup_command(backup_env), env=cli_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not _pg_dump_copying(url):
                assert process.poll() is None, "the backup ended before pg_dump copied a table"
                assert time.monotonic() < deadline, "pg_dump never reached its COPY within 240 s"
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert_nothing_looks_complete(backup_env, before)
        root = backup_env.data_dir / "backups" / backup_env.name
        assert list(root.glob(".*.partial"))  # the half-written set is there, hidden, as staging
        after = run_next_backup_at_once(backup_env, "mid-dump")
        assert sorted(after.values()) == ["abandoned", "complete"]
        assert not list(root.glob(".*.partial"))
        state, _ = run_flow(verify_backups, environment=backup_env.name)
        assert state.is_completed(), state.message
    finally:
        _admin(url, "DROP TABLE IF EXISTS crash_bulk")


def _admin(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def _pg_dump_copying(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                        "AND state = 'active' AND query LIKE 'COPY %'")
            return cur.fetchone()[0] > 0
    finally:
        conn.close()
