"""daily-backup and verify-backups on the PostgreSQL sandbox with offsite copies on S3 (moto).

Outcomes, not calls: a dump restored with plain pg_restore has the manifest's row counts, a
repository cloned from its bundle with plain git has the same refs, a flipped byte fails
verification naming the artifact.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import pytest
from sqlmodel import select

from conftest import create_database, drop_database
from flows.daily_backup import daily_backup
from flows.verify_backups import verify_backups
from tasks.backup.manifest import MANIFEST, read_manifest
from tradeops.cli.common import apply_file
from tradeops.store import BackupArtifact, BackupSet, session_for


def run(flow, env_name):
    state = flow(environment=env_name, return_state=True)
    return state, state.result(raise_on_failure=False)


def assert_row_counts(url: str, expected: dict[str, int]) -> None:
    """Count with plain SQL, independently of tradeops' own counting."""
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        for table, rows in expected.items():
            schema, name = table.split(".")
            cur.execute(f'SELECT count(*) FROM "{schema}"."{name}"')
            assert cur.fetchone()[0] == rows, table
    conn.close()


def _artifact(result, target, kind):
    return next(a for a in result["artifacts"] if a["target"] == target and a["kind"] == kind)


def test_backup_restores_with_plain_tools_and_verifies(backup_env, pg_server, tmp_path):
    state, result = run(daily_backup, backup_env.name)
    assert state.is_completed(), state.message
    set_dir = Path(result["set_dir"])
    manifest, problems = read_manifest(set_dir)
    assert problems == []
    assert set_dir.stat().st_mode & 0o777 == 0o700  # trading data: readable by the owner only

    # PostgreSQL: plain pg_restore into a new database gives the manifest's row counts
    dump = manifest.artifact("db:platform", "pg_dump")
    restored = create_database(pg_server, "tradeops_test_restore")
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored}", str(set_dir / dump.path)],
                       check=True, capture_output=True)
        assert_row_counts(restored, dump.details["row_counts"])
    finally:
        drop_database(restored)
    assert dump.details["row_counts"]["public.trades"] > 1000

    # the runbook's CSV of active experiments equals the live rows
    csv = (set_dir / manifest.artifact("db:platform", "csv").path).read_text().splitlines()
    conn = psycopg2.connect(backup_env.platform.database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM experiments WHERE status = 'active'")
        assert len(csv) - 1 == cur.fetchone()[0] > 0
    conn.close()

    # git: a clone from the bundle with plain git has the same refs and hashes
    repo = backup_env.platform.repos_dir / "momentum_alpha"
    bundle = set_dir / manifest.artifact("git:momentum_alpha", "git_bundle").path
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(bundle), str(clone)], check=True)

    def refs(path):
        out = subprocess.run(["git", "-C", str(path), "for-each-ref", "--format=%(refname) %(objectname)"],
                             check=True, capture_output=True, text=True).stdout
        return set(out.splitlines())

    assert refs(clone) == refs(repo)

    # offsite: every artifact and the manifest are in the bucket with identical bytes
    for entry in manifest.artifacts:
        body = backup_env.s3.get_object(Bucket=backup_env.bucket, Key=f"tradeops/{entry.offsite_key}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry.sha256 == hashlib.sha256((set_dir / entry.path).read_bytes()).hexdigest()
    backup_env.s3.head_object(Bucket=backup_env.bucket, Key=f"tradeops/{backup_env.name}/{manifest.set_id}/{MANIFEST}")

    # catalog: complete set, artifacts with flow run id and expiry
    run_id = str(state.state_details.flow_run_id)
    with session_for(backup_env.store) as session:
        backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == manifest.set_id)).one()
        artifacts = session.exec(select(BackupArtifact).where(BackupArtifact.set_id == manifest.set_id)).all()
    assert backup_set.status == "complete" and backup_set.flow_run_id == run_id
    assert {a.flow_run_id for a in artifacts} == {run_id}
    assert all(a.expires_at is not None and a.offsite_key for a in artifacts)

    # verify-backups proves the set and marks it verified
    state, verified = run(verify_backups, backup_env.name)
    assert state.is_completed(), state.message
    assert verified["verified"] == len(manifest.artifacts)
    with session_for(backup_env.store) as session:
        assert session.exec(select(BackupSet).where(BackupSet.set_id == manifest.set_id)).one().verified_at


def test_unchanged_repositories_reuse_the_verified_bundle(backup_env):
    _, first = run(daily_backup, backup_env.name)
    run(verify_backups, backup_env.name)
    subprocess.run(["git", "-C", str(backup_env.platform.repos_dir / "mean_reversion"), "tag", "-a",
                    f"v9.9.{uuid.uuid4().int % 1000}", "-m", "new release"], check=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"})
    state, second = run(daily_backup, backup_env.name)
    assert state.is_completed(), state.message
    unchanged = _artifact(second, "git:momentum_alpha", "git_bundle")
    assert unchanged["reused_from"] == first["set_id"]
    assert unchanged["offsite_key"] == _artifact(first, "git:momentum_alpha", "git_bundle")["offsite_key"]
    assert _artifact(second, "git:mean_reversion", "git_bundle")["reused_from"] is None  # refs moved
    state, _ = run(verify_backups, backup_env.name)
    assert state.is_completed(), state.message


def test_flipped_bytes_fail_verification_naming_the_artifact(backup_env):
    _, result = run(daily_backup, backup_env.name)
    set_dir = Path(result["set_dir"])
    dump = _artifact(result, "db:platform", "pg_dump")
    key = f"tradeops/{dump['offsite_key']}"
    obj = backup_env.s3.get_object(Bucket=backup_env.bucket, Key=key)
    body = bytearray(obj["Body"].read())
    body[len(body) // 2] ^= 0x01
    backup_env.s3.put_object(Bucket=backup_env.bucket, Key=key, Body=bytes(body), Metadata=obj["Metadata"])

    state, verified = run(verify_backups, backup_env.name)
    assert state.is_failed()
    assert "db:platform (pg_dump)" in state.message and dump["offsite_key"] in state.message

    bundle = set_dir / "git" / "regime_switch.bundle"
    data = bytearray(bundle.read_bytes())
    data[-5] ^= 0xFF
    bundle.write_bytes(bytes(data))
    state, _ = run(verify_backups, backup_env.name)
    assert "git:regime_switch (git_bundle)" in state.message and "local git/regime_switch.bundle" in state.message


def test_corrupt_manifest_is_caught_and_the_copy_used(backup_env):
    _, result = run(daily_backup, backup_env.name)
    manifest = Path(result["set_dir"]) / MANIFEST
    manifest.write_text(manifest.read_text().replace('"size": ', '"size": 1', 1))
    state, verified = run(verify_backups, backup_env.name)
    assert state.is_failed()
    assert "manifest checksum does not match" in state.message
    assert verified["verified"] == len(result["artifacts"])  # the copy still proved every artifact


def test_one_failing_target_does_not_stop_the_others(backup_env, tmp_path):
    platform, config = backup_env.platform, backup_env.config
    apply_file(config, [("environment.name", backup_env.name), ("environment.data_dir", str(tmp_path / "ops")),
                        ("ops_store.url", backup_env.store),
                        ("databases.platform.url", "postgresql://postgres@127.0.0.1:1/gone"),
                        ("git.strategies.root", str(tmp_path / "no-such-folder")),
                        ("configs.platform-config.paths", [str(platform.config_dir), str(tmp_path / "missing.yml")])],
               quiet=True)
    state, result = run(daily_backup, backup_env.name)
    assert state.is_failed()
    assert set(result["failures"]) == {"db:platform", "config:platform-config", "git:strategies"}
    assert "no-such-folder does not exist" in result["failures"]["git:strategies"]
    assert "cannot connect" in result["failures"]["db:platform"]
    assert "missing.yml" in result["failures"]["config:platform-config"]
    assert [a["target"] for a in result["artifacts"]] == ["logs:platform"]
    assert not list(Path(result["set_dir"]).parent.glob(".*.partial"))


def test_offsite_key_holding_other_content_is_never_overwritten(backup_env):
    from blocks import OffsiteStorage
    from tasks.backup.offsite import OffsiteConflict, publish_offsite

    storage = OffsiteStorage.load(f"{backup_env.name}-offsite")
    path = Path(backup_env.platform.config_dir) / "rbac.yml"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    storage.write_bytes("conflict/rbac.yml", b"something else entirely")
    with pytest.raises(OffsiteConflict, match="already holds different content"):
        publish_offsite(storage, path, "conflict/rbac.yml", digest, path.stat().st_size)
    assert storage.read_bytes("conflict/rbac.yml") == b"something else entirely"
    publish_offsite(storage, path, "conflict/fresh.yml", digest, path.stat().st_size)
    publish_offsite(storage, path, "conflict/fresh.yml", digest, path.stat().st_size)  # same content: fine


def test_abandoned_staging_is_swept_and_never_listed_complete(backup_env):
    _, first = run(daily_backup, backup_env.name)
    root = Path(first["set_dir"]).parent
    abandoned = root / ".20200101T000000Z-daily-deadbeef.partial"
    (abandoned / "db").mkdir(parents=True)
    (abandoned / "db" / "platform.dump").write_bytes(b"PGDMP half")
    with session_for(backup_env.store) as session:
        session.add(BackupSet(set_id="20200101T000000Z-daily-deadbeef", environment=backup_env.name,
                              kind="daily", status="pending"))
        session.commit()
    state, _ = run(daily_backup, backup_env.name)
    assert state.is_completed()
    assert not abandoned.exists()
    with session_for(backup_env.store) as session:
        statuses = {s.set_id: s.status for s in session.exec(select(BackupSet)).all()}
    assert statuses["20200101T000000Z-daily-deadbeef"] == "abandoned"
    assert list(statuses.values()).count("complete") == 2
    manifests = [json.loads((root / s / MANIFEST).read_text())["set_id"] for s in statuses if (root / s).is_dir()]
    assert len(manifests) == 2


def test_weekly_full_set_with_audit_trail_and_object_lock(backup_env, s3_endpoint):
    from flows.weekly_backup import weekly_backup

    locked = f"tradeops-locked-{uuid.uuid4().hex[:6]}"
    backup_env.s3.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
    apply_file(backup_env.config, [("environment.name", backup_env.name),
                                   ("environment.data_dir", str(backup_env.data_dir)),
                                   ("ops_store.url", backup_env.store),
                                   ("offsite.url", f"s3://{locked}/tradeops"), ("offsite.endpoint_url", s3_endpoint)],
               quiet=True)
    _, daily = run(daily_backup, backup_env.name)
    run(verify_backups, backup_env.name)
    state, weekly = run(weekly_backup, backup_env.name)
    assert state.is_completed(), state.message
    assert all(a["reused_from"] is None for a in weekly["artifacts"])  # weekly packs everything again
    audit = _artifact(weekly, "audit:trail", "audit_log")
    lines = (Path(weekly["set_dir"]) / "audit" / "audit-trail.jsonl").read_text().splitlines()
    assert len(lines) >= 2 and json.loads(lines[-1])["operation"] == "config_apply"

    def lock(artifact):
        head = backup_env.s3.head_object(Bucket=locked, Key=f"tradeops/{artifact['offsite_key']}")
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")

    mode, until = lock(_artifact(weekly, "db:platform", "pg_dump"))
    assert mode == "COMPLIANCE" and 83 <= (until - datetime.now(timezone.utc)).days <= 84
    mode, until = lock(audit)
    assert mode == "COMPLIANCE" and until.year >= datetime.now(timezone.utc).year + 6
    assert lock(_artifact(weekly, "git:momentum_alpha", "git_bundle")) == (None, None)
    assert lock(_artifact(daily, "db:platform", "pg_dump"))[0] == "COMPLIANCE"

    state, _ = run(verify_backups, backup_env.name)
    assert state.is_completed(), state.message


def test_a_target_another_run_is_writing_is_not_written_twice(backup_env, monkeypatch):
    from tasks.locks import lock_for, target_lock

    monkeypatch.setenv("TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS", "3")
    busy = lock_for("backup", backup_env.name, "git:momentum_alpha", backup_env.store)
    with target_lock(busy, "git:momentum_alpha for another run"):  # another run is writing this repository
        state, result = run(daily_backup, backup_env.name)
    assert state.is_failed()
    assert set(result["failures"]) == {"git:momentum_alpha"}
    reason = result["failures"]["git:momentum_alpha"]
    assert "git:momentum_alpha is busy: held by git:momentum_alpha for another run (pid" in reason
    assert "for over 3 s of waiting" in reason
    assert "git:mean_reversion" in {a["target"] for a in result["artifacts"]}


def test_encrypted_sets_verify_only_with_the_right_key(backup_env, tmp_path):
    import os

    from prefect.blocks.system import Secret

    from tasks.backup.encryption import decrypt_file

    key = os.urandom(32)
    Secret(value=key.hex()).save(f"{backup_env.name}-backup-key", overwrite=True)
    apply_file(backup_env.config, [("environment.name", backup_env.name),
                                   ("environment.data_dir", str(backup_env.data_dir)),
                                   ("ops_store.url", backup_env.store),
                                   ("offsite.url", f"s3://{backup_env.bucket}/tradeops"),
                                   ("offsite.endpoint_url", backup_env.s3.meta.endpoint_url),
                                   ("backups.encryption_key_block", f"{backup_env.name}-backup-key")], quiet=True)
    state, result = run(daily_backup, backup_env.name)
    assert state.is_completed(), state.message
    set_dir = Path(result["set_dir"])
    dump = _artifact(result, "db:platform", "pg_dump")
    sealed = set_dir / "db" / "platform.dump.enc"
    assert sealed.is_file() and not (set_dir / "db" / "platform.dump").exists()
    assert b"PGDMP" not in sealed.read_bytes()[:4096]
    assert all(a["offsite_key"].endswith(".enc") for a in result["artifacts"])
    decrypt_file(sealed, tmp_path / "platform.dump", key)
    assert subprocess.run(["pg_restore", "--list", str(tmp_path / "platform.dump")],
                          capture_output=True).returncode == 0
    assert hashlib.sha256(sealed.read_bytes()).hexdigest() == dump["sha256"]

    state, _ = run(verify_backups, backup_env.name)
    assert state.is_completed(), state.message

    Secret(value=os.urandom(32).hex()).save(f"{backup_env.name}-backup-key", overwrite=True)  # wrong key
    state, verified = run(verify_backups, backup_env.name)
    assert state.is_failed()
    assert "cannot decrypt platform.dump.enc at chunk 0: wrong key" in state.message
    assert verified["verified"] == 0

    # the Secret edited since the apply into a 128-bit key: the run stops at its start, naming the
    # block (not one traceback per target), and writes no set
    with session_for(backup_env.store) as session:
        sets_before = len(session.exec(select(BackupSet)).all())
    folders_before = sorted(p.name for p in set_dir.parent.iterdir())
    Secret(value="ab" * 16).save(f"{backup_env.name}-backup-key", overwrite=True)
    state, result = run(daily_backup, backup_env.name)
    assert state.is_failed() and result["set_id"] is None
    assert (f"backups.encryption_key_block: Secret block '{backup_env.name}-backup-key': the encryption key "
            "must be 32 bytes") in state.message
    assert "ab" * 16 not in state.message
    with session_for(backup_env.store) as session:
        assert len(session.exec(select(BackupSet)).all()) == sets_before
    assert sorted(p.name for p in set_dir.parent.iterdir()) == folders_before


def test_parallel_directory_dump_restores_with_plain_tools(backup_env, pg_server, tmp_path):
    apply_file(backup_env.config, [("environment.name", backup_env.name),
                                   ("environment.data_dir", str(backup_env.data_dir)),
                                   ("ops_store.url", backup_env.store),
                                   ("offsite.url", f"s3://{backup_env.bucket}/tradeops"),
                                   ("offsite.endpoint_url", backup_env.s3.meta.endpoint_url),
                                   ("databases.platform.dump_jobs", 2)], quiet=True)
    state, result = run(daily_backup, backup_env.name)
    assert state.is_completed(), state.message
    manifest, _ = read_manifest(Path(result["set_dir"]))
    dump = manifest.artifact("db:platform", "pg_dump")
    assert dump.path == "db/platform.dump.tar" and dump.details["format"] == "directory"
    assert dump.details["jobs"] == 2

    # by hand, as docs/backups.md says (Restoring by hand): untar, then pg_restore -j
    unpacked = tmp_path / "platform.dump.d"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(Path(result["set_dir"]) / dump.path), "-C", str(unpacked)], check=True)
    restored = create_database(pg_server, "tradeops_test_restore")
    try:
        subprocess.run(["pg_restore", "--no-owner", "--jobs=2", f"--dbname={restored}", str(unpacked)],
                       check=True, capture_output=True)
        assert_row_counts(restored, dump.details["row_counts"])
    finally:
        drop_database(restored)

    state, _ = run(verify_backups, backup_env.name)
    assert state.is_completed(), state.message
    tar_path = Path(result["set_dir"]) / dump.path
    data = bytearray(tar_path.read_bytes())
    data[600] ^= 0xFF  # inside toc.dat, the first member
    tar_path.write_bytes(bytes(data))
    state, _ = run(verify_backups, backup_env.name)
    assert state.is_failed() and "db/platform.dump.tar" in state.message
