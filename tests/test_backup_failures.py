"""Backups under failure: the database stops mid-dump, the disk fills, the process is killed.

Each ends with a clear error and nothing partial published or listed as complete; the next run
succeeds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from sqlmodel import select

from tasks.backup.archives import tar_paths
from tasks.backup.postgres import BackupError, dump_postgres
from tasks.tool_output import tool_error
from tradeops.store import BackupSet, session_for

TRADEOPS = str(Path(sys.executable).parent / "tradeops")


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_database_stopping_mid_dump_publishes_nothing(pg_database, tmp_path):
    conn = psycopg2.connect(pg_database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE trades AS SELECT g AS id, random() AS pnl FROM generate_series(1, 50000) g")
    blocker = psycopg2.connect(pg_database)
    with blocker.cursor() as cur:  # pg_dump will queue behind this lock, mid-run
        cur.execute("BEGIN; LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
    name = pg_database.rsplit("/", 1)[1]

    def stop_the_database():
        with conn.cursor() as cur:
            for _ in range(100):
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'pg_dump'"
                            " AND wait_event_type = 'Lock'", (name,))
                if cur.fetchone()[0]:
                    break
                time.sleep(0.1)
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                        "AND pid <> pg_backend_pid()", (name,))

    stopper = threading.Thread(target=stop_the_database)
    stopper.start()
    with pytest.raises(BackupError) as failure:
        dump_postgres(pg_database, tmp_path / "set" / "db" / "platform.dump", tmp_path / "set" / "db" / "a.csv")
    stopper.join()
    conn.close()
    assert "pg_dump failed" in str(failure.value) or "database error during backup" in str(failure.value)
    assert _files(tmp_path / "set") == ["db"]  # no dump, no CSV, no temporary file left


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 256 KiB filesystem (tmpfs) to fill."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.fail(f"the disk-full tests mount a 256 KiB tmpfs and need root to do so: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_dump_and_leaves_nothing(pg_sandbox, tiny_filesystem):
    platform, _ = pg_sandbox
    with pytest.raises(BackupError, match="pg_dump failed"):
        dump_postgres(platform.database_url, tiny_filesystem / "db" / "platform.dump")
    assert _files(tiny_filesystem) == ["db"]


def test_a_full_disk_fails_the_archive_and_leaves_nothing(pg_sandbox, tiny_filesystem):
    platform, _ = pg_sandbox
    with pytest.raises(OSError, match="No space left on device"):
        tar_paths([platform.logs_dir], tiny_filesystem / "files" / "logs.tar.gz")
    assert _files(tiny_filesystem) == ["files"]


def test_killed_run_lists_nothing_complete_and_the_next_run_succeeds(backup_env):
    env = {**os.environ, "PREFECT_API_URL": os.environ["TRADEOPS_TEST_API_URL"]}
    root = backup_env.data_dir / "backups" / backup_env.name
    proc = subprocess.Popen([TRADEOPS, "run", "daily-backup", "--set", f"environment={backup_env.name}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(backup_env.data_dir.parent / "killed.log", "w"))
    for _ in range(600):
        if list(root.glob(".*.partial/*/*")):  # an artifact is being written
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the backup never started writing: " + (backup_env.data_dir.parent / "killed.log").read_text()[-3000:])
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    with session_for(backup_env.store) as session:
        statuses = [s.status for s in session.exec(select(BackupSet)).all()]
    assert statuses == ["pending"]
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []  # no set visible

    # the killed run's leases are taken over at once (its pid is gone): 20 s is plenty
    env["TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS"] = "20"
    done = subprocess.run([TRADEOPS, "run", "daily-backup", "--set", f"environment={backup_env.name}", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    assert not list(root.glob(".*.partial"))
    with session_for(backup_env.store) as session:
        statuses = sorted(s.status for s in session.exec(select(BackupSet)).all())
    assert statuses == ["abandoned", "complete"]
    assert (root / result["set_id"] / "manifest.json").is_file()


def test_a_full_disk_fails_those_targets_and_the_set_lists_only_whole_artifacts(backup_env, tiny_filesystem):
    """The git bundles and config archive usually fit in 256 KiB; the dump does not."""
    from flows.daily_backup import daily_backup
    from flows.verify_backups import verify_backups
    from tradeops.cli.common import apply_file

    apply_file(backup_env.config, [("environment.name", backup_env.name),
                                   ("environment.data_dir", str(tiny_filesystem)),
                                   ("ops_store.url", backup_env.store)], quiet=True)
    state = daily_backup(environment=backup_env.name, return_state=True)
    result = state.result(raise_on_failure=False)
    assert state.is_failed()
    assert "db:platform" in result["failures"] and "No space left on device" in result["failures"]["db:platform"]
    assert "No space left on device" in state.message
    listed = {a["target"] for a in result["artifacts"]}
    assert not listed & set(result["failures"])  # failed targets are not in the set at all
    root = tiny_filesystem / "backups" / backup_env.name
    assert [p.name for p in root.iterdir()] == ([result["set_id"]] if listed else [])  # no staging left
    state = verify_backups(environment=backup_env.name, return_state=True)
    assert state.is_completed(), state.message  # what the set lists is whole


def test_parallel_dump_only_where_it_pays():
    from tasks.backup.postgres import PARALLEL_DUMP, dump_jobs

    mib = 2**20
    assert dump_jobs([10 * mib] * 20, cpus=8) == 1  # small database: one custom-format file
    assert dump_jobs([900 * mib, 50 * mib, 50 * mib], cpus=8) == 1  # one table is the whole job
    assert dump_jobs([300 * mib, 300 * mib], cpus=2) == 2
    assert dump_jobs([50 * mib] * 24, cpus=2) == 2  # monthly partitions on two cores
    assert dump_jobs([50 * mib] * 24, cpus=16) == PARALLEL_DUMP["max_jobs"]
    assert dump_jobs([300 * mib, 300 * mib], cpus=1) == 1
    assert dump_jobs([1 * mib], cpus=8, requested=3) == 3  # the target's dump_jobs overrides
    assert dump_jobs([], cpus=8) == 1


def test_a_failed_pg_dump_is_reported_by_its_error_not_the_query_after_it(pg_database, tmp_path):
    """A role that may connect but not read one table: the dump fails naming the table."""
    role = f"tradeops_noread_{os.getpid()}"
    admin = psycopg2.connect(pg_database)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute(f"CREATE ROLE {role} LOGIN")
    try:
        for i in range(3):
            cur.execute(f"CREATE TABLE positions_history_for_strategy_{i} (id int)")
            cur.execute(f"GRANT SELECT ON positions_history_for_strategy_{i} TO {role}")
        cur.execute(f"REVOKE SELECT ON positions_history_for_strategy_1 FROM {role}")
        server, database = pg_database.rsplit("/", 1)
        url = server.replace("postgres@", f"{role}@") + f"/{database}"
        done = subprocess.run(["pg_dump", "--format=custom", "--file=/dev/null", f"--dbname={url}"],
                              capture_output=True, text=True)
        assert done.returncode != 0
        long_query = done.stderr + "pg_dump: detail: Query was: SELECT " + ", ".join(f"c{i}" for i in range(300))
        assert "permission denied" not in long_query[-500:]  # what the last 500 characters used to keep
        assert tool_error(long_query) == ("pg_dump: error: query failed: ERROR:  permission denied for table "
                                          "positions_history_for_strategy_1")
        with pytest.raises(BackupError, match="permission denied for table positions_history_for_strategy_1"):
            dump_postgres(url, tmp_path / "x.dump")
        assert list(tmp_path.iterdir()) == []
    finally:
        cur.execute(f"DROP OWNED BY {role}")
        cur.execute(f"DROP ROLE {role}")
        admin.close()
