"""Restores that never lose data (issue 22), on the PostgreSQL sandbox with offsite copies on S3.

A "live" database is made by restoring the set once into a database of its own; then a row is
written to it that the backup does not hold, so every test can tell the live content from the
restored one. A restore with overwrite either replaces it whole with the backup's content, or
leaves it exactly as it was: same tables, same rows, the extra row still there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlmodel import select

from flows.restore import restore
from flows.verify_backups import verify_backups
from tasks.backup.catalog import chosen_set
from tasks.backup.manifest import read_manifest, write_manifest
from tasks.backup.postgres import dump_postgres
from tradeops.files import sha256_file
from tasks.restore.publish import STAGING_DB, staging_prefix
from tradeops.store import AuditEntry, BackupSet, session_for

from conftest import cli_env, drop_database, run_flow

TRADEOPS = str(Path(sys.executable).parent / "tradeops")
MARKER = "('live-only-marker', now())"


def snapshot(url: str) -> dict[str, int]:
    """Every user table and its row count."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT schemaname || '.' || relname FROM pg_stat_user_tables ORDER BY 1")
        tables = [row[0] for row in cur.fetchall()]
        counts = {}
        for table in tables:
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
    conn.close()
    return counts


def flip_bit(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


def audit_operations(env) -> list[tuple[str, bool, str]]:
    with session_for(env.store) as session:
        return [(e.operation, e.success, e.details) for e in
                session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]


@pytest.fixture
def live(backed_up):
    """A live platform database holding the backup's content plus one row the backup lacks."""
    server = backed_up.platform.database_url.rsplit("/", 1)[0]
    name = f"tradeops_test_live_{uuid.uuid4().hex[:8]}"
    state, _ = run_flow(restore, environment=backed_up.name, targets=["db:platform"],
                        database_names={"db:platform": name})
    assert state.is_completed(), state.message
    url = f"{server}/{name}"
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE live_only (note text, at timestamptz)")
        cur.execute(f"INSERT INTO live_only VALUES {MARKER}")
    conn.close()
    backed_up.live_name, backed_up.live_url = name, url
    backed_up.live_before = snapshot(url)
    yield backed_up
    drop_database(url)


def overwrite_live(env, **params):
    return run_flow(restore, environment=env.name, targets=["db:platform"], overwrite=True,
                    database_names={"db:platform": env.live_name}, **params)


def staging_databases(env) -> list[str]:
    with psycopg2.connect(env.live_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (staging_prefix(env.name) + "%",))
        names = [row[0] for row in cur.fetchall()]
    conn.close()
    return names


def test_overwrite_from_a_corrupt_local_dump_restores_from_offsite_and_replaces_the_database_whole(live):
    dump = live.set_dir / "db" / "platform.dump"
    intact = dump.read_bytes()
    flip_bit(dump)
    state, result = overwrite_live(live)  # source=auto
    assert state.is_completed(), state.message
    assert "live_only" not in str(snapshot(live.live_url))  # the backup's content, whole
    assert snapshot(live.live_url) == {t: n for t, n in live.live_before.items() if t != "public.live_only"}
    assert len(result["fallbacks"]) == 1
    assert result["fallbacks"][0].startswith(f"db:platform: local file {live.set_dir}/db/platform.dump has SHA-256")
    assert result["fallbacks"][0].endswith("restored from the offsite copy instead, which verified")
    assert Path(result["emergency_backups"]["db:platform"]).is_file()  # the replaced live content, kept
    listing = subprocess.run(["pg_restore", "--list", result["emergency_backups"]["db:platform"]],
                             capture_output=True, text=True, check=True).stdout
    assert "TABLE public live_only" in listing
    # ...as a set like the others: catalogued, offsite, verified by the next verify-backups
    dump.write_bytes(intact)  # (the flipped bit would fail that verification, rightly)
    with session_for(live.store) as session:
        emergency = session.exec(select(BackupSet).where(BackupSet.set_id == result["emergency_set"])).one()
    assert (emergency.kind, emergency.status) == ("emergency", "complete")
    key = f"tradeops/{live.name}/{emergency.set_id}/db/{live.live_name}.dump"
    assert live.s3.head_object(Bucket=live.bucket, Key=key)["ContentLength"] > 0
    state, verified = run_flow(verify_backups, environment=live.name)
    assert state.is_completed(), state.message
    assert {a["set_id"] for a in verified["artifacts"]} >= {emergency.set_id}
    assert chosen_set(live.store, live.name).set_id == live.set_id  # never a restore's default
    assert staging_databases(live) == []
    operations = [op for op, _, _ in audit_operations(live)][-2:]
    assert operations == ["backup_restore_start", "backup_restore"]


def test_a_corrupt_dump_that_cannot_be_fetched_intact_leaves_the_live_database_unchanged(live):
    flip_bit(live.set_dir / "db" / "platform.dump")
    state, result = overwrite_live(live, source="local")
    assert state.is_failed()
    assert state.message.startswith(f"db:platform: local file {live.set_dir}/db/platform.dump has SHA-256 ")
    assert state.message.endswith("; nothing was restored or changed")
    assert snapshot(live.live_url) == live.live_before  # the extra row and every table still there
    assert result["emergency_backups"] == {}  # it failed before it had anything to replace
    start, end = audit_operations(live)[-2:]
    assert start[0] == "backup_restore_start" and end[:2] == ("backup_restore", False)
    assert staging_databases(live) == []


def test_a_dump_whose_rows_changed_fails_its_checks_in_staging_and_nothing_is_replaced(live, tmp_path):
    """A dump that is intact by its SHA-256 (re-signed manifest) but holds other rows: restored
    into staging, checked against the manifest's counts, never put in place."""
    other = tmp_path / "other.dump"
    dump_postgres(live.live_url, other, jobs=1)  # the live content, with its extra table and row
    manifest, _ = read_manifest(live.set_dir)
    entry = manifest.artifact("db:platform", "pg_dump")
    (live.set_dir / entry.path).write_bytes(other.read_bytes())
    entry.sha256, entry.size = sha256_file(other), other.stat().st_size
    write_manifest(live.set_dir, manifest)
    state, result = overwrite_live(live, source="local")
    assert state.is_failed()
    assert "db:platform: table public.live_only" in state.message
    assert state.message.endswith("; nothing was put in place")
    assert result["targets"][0]["put_in_place"] is False
    assert snapshot(live.live_url) == live.live_before
    assert staging_databases(live) == []


def test_kill_during_pg_restore_leaves_the_live_database_unchanged_and_the_start_audited(live):
    """kill -9 of the whole `tradeops run restore` process group while pg_restore writes into the
    staging database; then the next restore sweeps the leftover and succeeds."""
    args = [TRADEOPS, "run", "restore", "--set", f"environment={live.name}", "--set", 'targets=["db:platform"]',
            "--set", "overwrite=true", "--set", f'database_names={{"db:platform" = "{live.live_name}"}}', "--json"]
    process = subprocess.Popen(args, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    killed_during = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            restoring = [p for p in _children(process.pid) if "pg_restore" in p[2] and "--dbname" in p[2]]
            if restoring and staging_databases(live):
                killed_during = restoring[0][2]
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert killed_during is not None, "pg_restore was never seen running"
    assert STAGING_DB in killed_during  # it was writing into staging, never into the live database
    assert snapshot(live.live_url) == live.live_before
    operations = [op for op, _, _ in audit_operations(live)]
    assert operations[-1] == "backup_restore_start"  # the kill is visible: a start with no end

    state, result = overwrite_live(live)
    assert state.is_completed(), state.message
    assert any(s.startswith(f"database {STAGING_DB}") for s in result["swept"])
    assert staging_databases(live) == []
    assert "public.live_only" not in snapshot(live.live_url)


@pytest.mark.parametrize("point", ["restore:before-swap"])
def test_kill_just_before_the_swap_leaves_the_live_database_unchanged(live, point):
    done = subprocess.run([TRADEOPS, "run", "restore", "--set", f"environment={live.name}",
                           "--set", 'targets=["db:platform"]', "--set", "overwrite=true",
                           "--set", f'database_names={{"db:platform" = "{live.live_name}"}}'],
                          env=cli_env(TRADEOPS_KILL_AT=point), capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert snapshot(live.live_url) == live.live_before
    assert len(staging_databases(live)) == 1  # restored and checked, never put in place
    state, _ = overwrite_live(live)
    assert state.is_completed(), state.message
    assert staging_databases(live) == []


def test_folders_are_replaced_whole_or_not_at_all(backed_up, tmp_path):
    folder = tmp_path / "r"
    state, _ = run_flow(restore, environment=backed_up.name, directory=str(folder), targets=["git:momentum_alpha"])
    assert state.is_completed(), state.message
    repo = folder / "git" / "momentum_alpha.git"
    (repo / "live-only-file").write_text("not in the backup")
    flip_bit(backed_up.set_dir / "git" / "momentum_alpha.bundle")
    state, _ = run_flow(restore, environment=backed_up.name, directory=str(folder), targets=["git:momentum_alpha"],
                        overwrite=True, source="local")
    assert state.is_failed() and "nothing was restored or changed" in state.message
    assert (repo / "live-only-file").read_text() == "not in the backup"
    state, result = run_flow(restore, environment=backed_up.name, directory=str(folder),
                             targets=["git:momentum_alpha"], overwrite=True)
    assert state.is_completed(), state.message
    assert not (repo / "live-only-file").exists()
    assert list(folder.parent.glob(".r.*")) == [] and list(repo.parent.glob(".*replaced*")) == []


def _children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, command name, command line) of every descendant of `pid`."""
    found, parents = [], {pid}
    for _ in range(3):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in {p for p, _, _ in found}:
                continue
            try:
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                if parent in parents:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append((int(entry.name), stat.split("(", 1)[1].rsplit(")", 1)[0], cmdline))
                    parents.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found
