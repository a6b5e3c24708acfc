"""Point-in-time recovery on a private PostgreSQL cluster that archives WAL through tradeops.

The shared server cannot turn archive_mode on, so these tests initdb their own cluster with
`archive_command = 'tradeops wal push %p --spool ...'`, write rows whose commit times are known
(track_commit_timestamp), force segment switches, and restore into scratch clusters: between two
writes, exactly at a commit (inclusive and not), latest, from a folder and from S3 (moto). A gap
planted offsite is found and named; a damaged segment is refused by its checksum.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import psycopg2
import pytest
from sqlmodel import select

from blocks import OffsiteStorage
from conftest import _as_cluster_owner, free_port
from flows.base_backup import base_backup
from flows.pitr_restore import pitr_restore
from flows.wal_archive import wal_archive
from tasks.backup.offsite import publish_offsite
from tasks.pitr.archive import archive_info, drain_spool
from tasks.pitr.cluster import wal_cli_command
from tasks.pitr.basebackup import base_backups, publish_base_backup, take_base_backup
from tasks.pitr.gaps import find_gaps, wal_inventory
from tasks.pitr.layout import archive_prefix, base_prefix
from tasks.pitr.restore import restore_to_time, stop_restored
from tradeops import clock
from tradeops.cli.common import apply_file
from tradeops.cli.main import main
from tradeops.store import session_for
from tradeops.store.identity import os_login
from tradeops.store.models import AlertSent, AuditEntry
from tradeops.wal.names import LONG_HEADER, parse_archived
from tradeops.wal.spool import push

pytestmark = [pytest.mark.postgres, pytest.mark.prefect]

TRADEOPS = str(Path(sys.executable).parent / "tradeops")
ENV = "pitr"


# -- a private cluster that archives through tradeops ---------------------------------------------

def _owner_run(args: list[str]) -> None:
    subprocess.run(_as_cluster_owner(args), check=True, capture_output=True)


def start_archiving_cluster() -> SimpleNamespace:
    root = Path(tempfile.mkdtemp(prefix="tradeops-pitr-"))
    spool, data, port = root / "spool", root / "data", free_port()
    spool.mkdir()
    if os.geteuid() == 0:
        for path in (root, spool):
            shutil.chown(path, "postgres", "postgres")
    _owner_run([shutil.which("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"])
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                   "archive_mode = on\ntrack_commit_timestamp = on\nwal_level = replica\n"
                   f"archive_command = '{wal_cli_command()} push %p --spool {spool}'\n")
    _owner_run([shutil.which("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "pg.log"), "start"])
    server = f"postgresql://postgres@127.0.0.1:{port}"
    admin(f"{server}/postgres", "CREATE DATABASE platform")
    url = f"{server}/platform"
    admin(url, "CREATE TABLE regime_history (id serial PRIMARY KEY, ts timestamptz NOT NULL DEFAULT clock_timestamp(), "
               "note text NOT NULL)",
          "INSERT INTO regime_history (ts, note) SELECT clock_timestamp() - interval '10 minutes', 'old ' || g "
          "FROM generate_series(1, 50) g")
    return SimpleNamespace(root=root, spool=spool, data=data, port=port, url=url)


def stop_cluster(cluster: SimpleNamespace) -> None:
    subprocess.run(_as_cluster_owner([shutil.which("pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"]),
                   capture_output=True)
    shutil.rmtree(cluster.root, ignore_errors=True)


def admin(url: str, *statements: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def query(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchall()
    finally:
        conn.close()


def write(url: str, note: str):
    """One committed row; returns its commit time (track_commit_timestamp)."""
    admin(url, f"INSERT INTO regime_history (note) VALUES ('{note}')")
    return query(url, "SELECT pg_xact_commit_timestamp(xmin) FROM regime_history WHERE note = %s", (note,))[0][0]


def switch_and_wait(url: str, timeout: float = 60) -> str:
    """Close the current segment and wait until archive_command has spooled it."""
    current = query(url, "SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
    admin(url, "SELECT pg_switch_wal()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        archived, failed = query(url, "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")[0]
        if archived and archived >= current:
            return current
        time.sleep(0.1)
    raise AssertionError(f"{current} was not archived within {timeout} s (last failed: {failed})")


def notes(url: str) -> set[str]:
    return {row[0] for row in query(url, "SELECT note FROM regime_history WHERE note NOT LIKE 'old %'")}


def s3_storage(endpoint: str) -> OffsiteStorage:
    bucket = f"tradeops-pitr-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return OffsiteStorage(url=f"s3://{bucket}/offsite", endpoint_url=endpoint)


def drain_both(env: SimpleNamespace) -> None:
    """The spool goes to the folder store; an identical copy of it to S3 (both archives complete)."""
    shutil.copytree(env.cluster.spool, env.spool_s3, dirs_exist_ok=True)
    for storage, spool in ((env.folder, env.cluster.spool), (env.s3, env.spool_s3)):
        result = drain_spool(storage, ENV, "platform", spool, publish_offsite)
        assert not result.failures and not result.left, result.failures


@pytest.fixture(scope="module")
def archived(s3_endpoint):
    """A cluster with a base backup and three writes A < B < C archived to a folder and to S3."""
    cluster = start_archiving_cluster()
    try:
        env = SimpleNamespace(cluster=cluster, folder=OffsiteStorage(url=f"file://{cluster.root}/offsite"),
                              s3=s3_storage(s3_endpoint), spool_s3=cluster.root / "spool-s3")
        folder = cluster.root / "base"
        backup = take_base_backup(cluster.url, ENV, "platform", folder)
        for storage in (env.folder, env.s3):
            publish_base_backup(storage, backup, folder, publish_offsite)
        env.backup = backup
        env.a = write(cluster.url, "A")
        time.sleep(0.4)
        env.b = write(cluster.url, "B")
        time.sleep(0.4)
        env.c = write(cluster.url, "C")
        switch_and_wait(cluster.url)
        drain_both(env)
        env.prefix = archive_prefix(ENV, "platform", backup.system_identifier)
        yield env
    finally:
        stop_cluster(cluster)


def restored(env, storage, target_time, **options):
    folder = env.cluster.root / f"restore-{uuid.uuid4().hex[:6]}"
    result = restore_to_time(storage, ENV, "platform", env.cluster.url, target_time, folder, keep_running=True,
                             timeout=120, **options)
    assert result.passed, result.problems
    try:
        return result, notes(result.database_url)
    finally:
        stop_restored(result)
        assert not folder.exists()


def copy_of_archive(env) -> OffsiteStorage:
    """A separate copy of the folder archive, to damage without touching the others."""
    root = env.cluster.root / f"offsite-copy-{uuid.uuid4().hex[:6]}"
    shutil.copytree(env.cluster.root / "offsite", root)
    return OffsiteStorage(url=f"file://{root}")


def segment_keys(storage: OffsiteStorage, prefix: str) -> list[str]:
    return sorted(k for k in storage.list_keys(f"{prefix}/wal/")
                  if "/history/" not in k and len(parse_archived(k.rsplit("/", 1)[-1])[0]) == 24)


# -- archive_command ------------------------------------------------------------------------------

def fake_cluster(root: Path, system_identifier: int) -> Path:
    (root / "global").mkdir(parents=True)
    (root / "global" / "pg_control").write_bytes(struct.pack("=Q", system_identifier) + bytes(100))
    return root


def fake_segment(folder: Path, name: str, system_identifier: int, size: int = 1 << 20, fill: bytes = b"x") -> Path:
    number = int(name[8:16], 16) * ((1 << 32) // size) + int(name[16:], 16)
    header = LONG_HEADER.pack(0xD110, 0x0002, 1, number * size, 0, system_identifier, size, 8192)
    path = folder / "pg_wal" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + fill * (size - len(header)))
    return path


def test_push_spools_checked_copies_and_refuses_what_does_not_belong(tmp_path):
    pgdata, spool = fake_cluster(tmp_path / "data", 7001), tmp_path / "spool"
    spool.mkdir()
    segment = fake_segment(pgdata, "000000010000000000000003", 7001)
    first = push(segment, spool, pgdata)
    assert not first.already and first.path.read_bytes() == segment.read_bytes()
    assert first.path.name == f"000000010000000000000003-{first.sha256}" and first.path.parent.name == "7001"
    assert push(segment, spool, pgdata).already  # PostgreSQL retrying after a crash: accepted
    fake_segment(pgdata, "000000010000000000000003", 7001, fill=b"y")
    with pytest.raises(Exception, match="already holds it with SHA-256"):
        push(segment, spool, pgdata)
    foreign = fake_segment(pgdata, "000000010000000000000004", 9999)
    with pytest.raises(Exception, match="system identifier 9999"):
        push(foreign, spool, pgdata)
    renamed = fake_segment(pgdata, "000000010000000000000005", 7001)
    renamed.rename(renamed.with_name("000000010000000000000006"))
    with pytest.raises(Exception, match="not where its name puts it"):
        push(renamed.with_name("000000010000000000000006"), spool, pgdata)
    assert [p.name for p in (spool / "7001").iterdir()] == [first.path.name]  # nothing else, no temporaries
    # the command PostgreSQL runs: exit 0, or 1 with the reason on stderr (PostgreSQL keeps the segment)
    ok = subprocess.run([TRADEOPS, "wal", "push", "pg_wal/000000010000000000000003", "--spool", str(spool)],
                        cwd=pgdata, capture_output=True, text=True)
    bad = subprocess.run([TRADEOPS, "wal", "push", "pg_wal/000000010000000000000004", "--spool", str(spool)],
                         cwd=pgdata, capture_output=True, text=True)
    missing = subprocess.run([TRADEOPS, "wal", "push", "pg_wal/000000010000000000000007", "--spool",
                              str(tmp_path / "nowhere")], cwd=pgdata, capture_output=True, text=True)
    assert ok.returncode == 1 and "already holds it" in ok.stderr  # the y-filled copy differs from the spooled one
    assert bad.returncode == 1 and "system identifier 9999" in bad.stderr
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_drain_refuses_a_spool_file_damaged_after_spooling(tmp_path):
    pgdata, spool = fake_cluster(tmp_path / "data", 7002), tmp_path / "spool"
    spool.mkdir()
    good = push(fake_segment(pgdata, "000000010000000000000001", 7002), spool, pgdata)
    bad = push(fake_segment(pgdata, "000000010000000000000002", 7002), spool, pgdata)
    with open(bad.path, "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\x00")
    storage = OffsiteStorage(url=f"file://{tmp_path}/offsite")
    result = drain_spool(storage, "e", "db", spool, publish_offsite)
    assert result.uploaded == [good.name]
    assert len(result.failures) == 1 and "000000010000000000000002" in result.failures[0]
    assert (spool / "7002" / f".damaged-{bad.path.name}").exists() and not good.path.exists()
    assert archive_info(storage, archive_prefix("e", "db", 7002))["wal_segment_size"] == 1 << 20


def test_the_hundredth_drain_keeps_the_archive_contiguous_and_the_spool_empty(tmp_path):
    pgdata, spool = fake_cluster(tmp_path / "data", 7003), tmp_path / "spool"
    spool.mkdir()
    storage = OffsiteStorage(url=f"file://{tmp_path}/offsite")
    prefix = archive_prefix("e", "db", 7003)
    for run_number in range(1, 101):
        segment = fake_segment(pgdata, f"0000000100000000{run_number:08X}", 7003, size=1 << 16,
                               fill=bytes([run_number]))
        push(segment, spool, pgdata)
        segment.unlink()  # PostgreSQL recycles it once archive_command said 0
        result = drain_spool(storage, "e", "db", spool, publish_offsite)
        assert result.uploaded == [segment.name] and not result.failures and not result.left
        if run_number in (2, 10, 100):
            inventory = wal_inventory(storage, prefix, archive_info(storage, prefix)["wal_segment_size"])
            assert inventory.segments() == {1: list(range(1, run_number + 1))} and not find_gaps(inventory)
            assert inventory.newest_segment() == segment.name
    assert not any((spool / "7003").iterdir())


# -- restore to a point in time ----------------------------------------------------------------------

def test_restore_between_two_writes_holds_the_first_and_not_the_second(archived):
    between = archived.a + (archived.b - archived.a) / 2
    result, found = restored(archived, archived.folder, between)
    assert found == {"A"}
    assert result.backup_id == archived.backup.backup_id and result.wal_fetched >= 1
    assert result.recovered_to is not None and archived.a.isoformat() <= result.recovered_to < between.isoformat()


def test_restore_exactly_at_a_commit_follows_recovery_target_inclusive(archived):
    _, inclusive = restored(archived, archived.folder, archived.b, inclusive=True)
    _, exclusive = restored(archived, archived.folder, archived.b, inclusive=False)
    assert inclusive == {"A", "B"} and exclusive == {"A"}


def test_restore_from_s3_and_to_latest(archived):
    between = archived.b + (archived.c - archived.b) / 2
    _, found = restored(archived, archived.s3, between)
    assert found == {"A", "B"}
    archived.d = write(archived.cluster.url, "D")
    switch_and_wait(archived.cluster.url)
    drain_both(archived)
    result, latest = restored(archived, archived.s3, None)
    assert latest == {"A", "B", "C", "D"} and result.timeline == archived.backup.timeline + 1
    _, from_folder = restored(archived, archived.folder, None)
    assert from_folder == {"A", "B", "C", "D"}


def test_a_gap_offsite_is_found_named_and_stops_a_latest_restore(archived):
    storage = copy_of_archive(archived)
    keys = segment_keys(storage, archived.prefix)
    assert len(keys) >= 2
    removed = keys[-2]  # not the newest: a hole in the middle
    storage.delete(removed)
    missing = parse_archived(removed.rsplit("/", 1)[-1])[0]
    inventory = wal_inventory(storage, archived.prefix, archive_info(storage, archived.prefix)["wal_segment_size"])
    gaps = find_gaps(inventory, archived.backup.start_segment())
    assert [(g.first, g.count) for g in gaps] == [(missing, 1)]
    folder = archived.cluster.root / "restore-gap"
    with pytest.raises(Exception, match=f"gaps .*{missing}"):
        restore_to_time(storage, ENV, "platform", archived.cluster.url, None, folder, timeout=60)
    assert not folder.exists()


def test_a_damaged_segment_is_refused_by_its_checksum(archived):
    storage = copy_of_archive(archived)
    key = segment_keys(storage, archived.prefix)[-1]
    path = Path(storage.url.removeprefix("file://")) / key
    with open(path, "r+b") as handle:
        handle.seek(4096 + 100)
        handle.write(b"\xff\xff")
    folder = archived.cluster.root / "restore-damaged"
    result = restore_to_time(storage, ENV, "platform", archived.cluster.url, None, folder, timeout=60)
    name = parse_archived(key.rsplit("/", 1)[-1])[0]
    assert not result.passed and not result.running and not folder.exists()
    assert any(f"{name}: offsite copy" in p and "hashes to" in p for p in result.problems), result.problems


def test_no_base_backup_before_the_target_time_is_a_clear_error(archived):
    too_early = archived.backup.stopped_at - timedelta(hours=1)
    with pytest.raises(Exception, match="no base backup stopped at or before"):
        restore_to_time(archived.folder, ENV, "platform", archived.cluster.url, too_early,
                        archived.cluster.root / "restore-early")


# -- the flows, on an environment applied from a tradeops.toml ------------------------------------------

@pytest.fixture
def flow_env(tmp_path):
    cluster = start_archiving_cluster()
    name = f"pitrflow-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "tradeops.toml"
    config.write_text(f"""
[environment]
name = "{name}"
data_dir = "{cluster.root}/ops"
[ops_store]
url = "sqlite:///{tmp_path}/ops.db"
[offsite]
url = "file://{cluster.root}/offsite"
[[databases]]
name = "platform"
url = "{cluster.url}"
freshness_table = "regime_history"
freshness_column = "ts"
wal_archive = true
wal_spool = "{cluster.spool}"
[[alerts]]
name = "ops"
kind = "log"
min_severity = "low"
[backups]
retention_days = {{ pitr = 1 }}  # the recovery window: one day, so a test can step past it
[access]
users = {{ admin = "system_administrator", dev = "strategy_developer" }}
user = "admin"
logins = {{ {json.dumps(os_login())} = "admin" }}
""")
    try:
        apply_file(config, quiet=True)
        yield SimpleNamespace(name=name, cluster=cluster, store=f"sqlite:///{tmp_path}/ops.db",
                              storage=OffsiteStorage(url=f"file://{cluster.root}/offsite"))
    finally:
        stop_cluster(cluster)


def run(flow, **params):
    state = flow(return_state=True, **params)
    return state, state.result(raise_on_failure=False)


def alerts_sent(store: str) -> list[str]:
    with session_for(store) as session:
        return [row.alert_key for row in session.exec(select(AlertSent)).all()]


def test_flows_archive_back_up_restore_to_a_time_and_prove_the_rpo(flow_env):
    url = flow_env.cluster.url
    state, result = run(base_backup, environment=flow_env.name)
    assert state.is_completed(), state.message
    backup = result["backups"][0]
    assert backup["start_lsn"] and backup["stop_time"] and backup["system_identifier"]
    a = write(url, "A")
    time.sleep(0.4)
    b = write(url, "B")
    switch_and_wait(url)
    state, result = run(wal_archive, environment=flow_env.name)
    assert state.is_completed(), state.message
    first = result["targets"][0]
    assert first["uploaded"] and not first["left_in_spool"] and not first["gaps"]
    assert first["archiver"]["failed_count"] == 0 and first["newest_segment"]
    state, again = run(wal_archive, environment=flow_env.name)  # the next scheduled run: nothing new
    assert state.is_completed() and again["targets"][0]["uploaded"] == []

    # the drill's proof: every row dated up to the window before the target time is there, unchanged;
    # the default window (a minute) covers the 50 old rows, a 0.1 s one A as well
    between = a + (b - a) / 2
    state, result = run(pitr_restore, environment=flow_env.name, target_time=between)
    assert state.is_completed(), state.message
    assert result["rpo"]["passed"] and result["rpo"]["source_rows"] == result["rpo"]["restored_rows"] == 50
    state, result = run(pitr_restore, environment=flow_env.name, target_time=between, rpo_window_seconds=0.1)
    assert state.is_completed(), state.message
    assert result["rpo"]["passed"] and result["rpo"]["source_rows"] == result["rpo"]["restored_rows"] == 51
    assert 0 < result["rpo"]["rpo_seconds"] < 1 and not result["running"]
    assert not any(Path(flow_env.cluster.root, "ops", "pitr", "restores").iterdir())  # stopped and removed

    state, result = run(pitr_restore, environment=flow_env.name, target_time="latest", keep_running=True)
    assert state.is_completed(), state.message
    try:
        assert result["running"] and notes(result["database_url"]) == {"A", "B"}
        assert Path(result["data_dir"]).is_dir() and result["port"]
    finally:
        stop_restored(SimpleNamespace(**{k: result[k] for k in ("server_major", "data_dir", "folder")},
                                      running=True))


def test_base_backups_and_wal_expire_by_the_window_and_a_restore_inside_it_still_works(flow_env):
    """Two daily base backups with writes between, then the next day's run (the recovery window is
    one day here): the first backup and the WAL before the second go; a restore between the
    second backup and the next day's still replays the kept WAL; before the window it is refused."""
    url, storage = flow_env.cluster.url, flow_env.storage
    ids = []
    for note in ("A", "B"):
        state, result = run(base_backup, environment=flow_env.name)
        assert state.is_completed(), state.message
        assert result["expiry"][0]["expired"] == [] and result["expiry"][0]["wal_files_removed"] == 0
        ids.append(result["backups"][0]["backup_id"])
        written = write(url, note)
    time.sleep(0.4)
    after_b = write(url, "X")
    switch_and_wait(url)
    assert run(wal_archive, environment=flow_env.name)[0].is_completed()
    system = base_backups(storage, flow_env.name, "platform")[0].system_identifier
    prefix = archive_prefix(flow_env.name, "platform", system)
    wal_before = [k for k in storage.list_keys(f"{prefix}/wal/") if "/history/" not in k]  # segments, .backup files
    [first, second] = base_backups(storage, flow_env.name, "platform")

    state, dry = run(base_backup, environment=flow_env.name, expire_dry_run=True)  # what would go: nothing goes
    assert state.is_completed() and dry["expiry"][0]["expired"] == [] and set(storage.list_keys(f"{prefix}/wal/")) >= set(wal_before)
    with clock.frozen_at(second.stopped_at + timedelta(days=1)):  # a day on: the window starts where the second stopped
        state, result = run(base_backup, environment=flow_env.name)
    assert state.is_completed(), state.message
    [expiry] = result["expiry"]
    assert expiry["expired"] == [ids[0]]
    assert expiry["kept"] == [ids[1], dry["backups"][0]["backup_id"], result["backups"][0]["backup_id"]]
    assert not storage.list_keys(base_prefix(prefix, ids[0]) + "/")
    gone = set(expiry["wal_keys"])
    assert gone and gone == {k for k in wal_before if parse_archived(k.rsplit("/", 1)[-1])[0][8:24]
                             < second.start_segment().name(second.wal_segment_size)[8:24]}
    assert not gone & set(storage.list_keys(f"{prefix}/wal/"))
    with session_for(flow_env.store) as session:
        [audited] = session.exec(select(AuditEntry).where(AuditEntry.operation == "pitr_expire")).all()
    details = json.loads(audited.details)
    assert details["expired"] == [ids[0]] and details["wal_files_removed"] == len(gone) and details["window_days"] == 1

    # between B and X: the second backup and the WAL after it, all still there
    target = written + (after_b - written) / 2
    state, restored = run(pitr_restore, environment=flow_env.name, target_time=target, keep_running=True)
    assert state.is_completed(), state.message
    try:
        assert restored["backup_id"] == ids[1] and notes(restored["database_url"]) == {"A", "B"}
    finally:
        stop_restored(SimpleNamespace(**{k: restored[k] for k in ("server_major", "data_dir", "folder")},
                                      running=True))
    # when the first backup stopped (before the second): that backup is gone, and the restore says so
    state, _ = run(pitr_restore, environment=flow_env.name, target_time=first.stopped_at)
    assert state.is_failed() and "no base backup stopped at or before" in state.message


def test_a_gap_fails_the_archive_run_and_alerts_once(flow_env):
    url = flow_env.cluster.url
    state, _ = run(base_backup, environment=flow_env.name)
    assert state.is_completed(), state.message
    for note in ("A", "B", "C"):
        write(url, note)
        switch_and_wait(url)
    state, _ = run(wal_archive, environment=flow_env.name)
    assert state.is_completed(), state.message
    backup = base_backups(flow_env.storage, flow_env.name, "platform")[0]
    prefix = archive_prefix(flow_env.name, "platform", backup.system_identifier)
    removed = segment_keys(flow_env.storage, prefix)[-2]
    flow_env.storage.delete(removed)
    missing = parse_archived(removed.rsplit("/", 1)[-1])[0]
    for run_number in (2, 3):
        state, result = run(wal_archive, environment=flow_env.name)
        assert state.is_failed() and missing in state.message, state.message
        assert result["targets"][0]["gaps"][0]["first"] == missing
        assert alerts_sent(flow_env.store).count(f"wal-gap:platform:{backup.system_identifier}:{missing}") == 1


def test_pitr_restore_needs_the_restore_permission(flow_env, capsys):
    code = main(["run", "pitr-restore", "--set", f"environment={flow_env.name}", "--user", "dev", "--json"])
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 3 and answer["state"] == "Failed" and "lacks permission backup.restore" in answer["message"]
    assert "lacks permission backup.restore" in answer["result"]["access_denied"]


def test_wal_archive_settings_are_validated_naming_the_key():
    from tradeops.cli.config import validate_document
    from tradeops.errors import ConfigError

    base = {"databases": [{"name": "platform", "url": "postgresql://u@h/db", "wal_archive": True}]}
    with pytest.raises(ConfigError, match=r"databases\[0\].*wal_spool"):
        validate_document(base, "t.toml")
    base["databases"][0]["wal_spool"] = "/var/lib/tradeops/wal-spool"
    with pytest.raises(ConfigError, match=r"platform: wal_archive = true needs \[offsite\]"):
        validate_document(base, "t.toml")
    config = validate_document({**base, "offsite": {"url": "file:///mnt/offsite"}}, "t.toml")
    assert config.databases[0].wal_archive and config.databases[0].wal_spool == "/var/lib/tradeops/wal-spool"


def test_restore_command_never_says_not_found_for_a_broken_call(tmp_path):
    """Exit 1 tells PostgreSQL "not in the archive", ending recovery early: a usage error or a
    queue that cannot be asked must stop the recovery instead (exit > 125)."""
    usage = subprocess.run([sys.executable, "-m", "tradeops.wal.cli", "get", "000000010000000000000001"],
                           capture_output=True, text=True)
    no_queue = subprocess.run([sys.executable, "-m", "tradeops.wal.cli", "get", "000000010000000000000001",
                               str(tmp_path / "x"), "--queue", str(tmp_path / "none"), "--timeout", "1"],
                              capture_output=True, text=True)
    (tmp_path / "q" / "requests").mkdir(parents=True)
    (tmp_path / "q" / "000000010000000000000002.missing").touch()
    missing = subprocess.run([sys.executable, "-m", "tradeops.wal.cli", "get", "000000010000000000000002",
                              str(tmp_path / "x"), "--queue", str(tmp_path / "q"), "--timeout", "0.3"],
                             capture_output=True, text=True)
    assert usage.returncode == 255 and no_queue.returncode == 255 and "cannot ask" in no_queue.stderr
    assert missing.returncode == 255 and "no answer" in missing.stderr  # a stale answer is not taken for a new one


def test_the_dr_drill_restores_to_a_point_in_time_and_proves_its_rpo(flow_env):
    """The quarterly drill, on a database with WAL archiving: beside the newest set, a restore to a
    time between two writes, with rows up to a minute before it all there."""
    from flows.daily_backup import daily_backup
    from flows.dr_drill import dr_drill

    url = flow_env.cluster.url
    state, _ = run(base_backup, environment=flow_env.name)
    assert state.is_completed(), state.message
    a = write(url, "A")
    time.sleep(0.4)
    b = write(url, "B")
    switch_and_wait(url)
    assert run(wal_archive, environment=flow_env.name)[0].is_completed()
    state, _ = run(daily_backup, environment=flow_env.name)  # and its verify-backups
    assert state.is_completed(), state.message
    state, result = run(dr_drill, environment=flow_env.name, pitr_target_time=a + (b - a) / 2)
    assert state.is_completed(), state.message
    pitr = next(t for t in result["targets"] if t["target"] == "pitr:platform")
    assert pitr["passed"] and pitr["fell_back_to_latest"] is None
    assert pitr["rpo_seconds"] is not None and pitr["rpo_seconds"] < 60
    assert "db:platform" in {t["target"] for t in result["targets"]}  # the set's restore as well
    assert not any(Path(flow_env.cluster.root, "ops", "pitr", "drills").iterdir())  # nothing left running
