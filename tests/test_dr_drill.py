"""dr-drill and restore on the PostgreSQL sandbox with offsite copies on S3 (moto).

The drill must be able to fail: a flipped offsite byte, a deleted offsite object, a dump whose
rows changed under the old manifest, a moved git ref, the S3 endpoint down. Each fails naming
the target, and no scratch database or folder is left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
from sqlmodel import select

from blocks import OffsiteStorage
from flows.daily_backup import daily_backup
from flows.dr_drill import SCRATCH_DB_PREFIX, dr_drill
from flows.restore import restore
from flows.verify_backups import verify_backups
from tasks.backup.manifest import write_manifest
from tasks.backup.postgres import dump_postgres
from tasks.restore.fetch import offsite_manifest
from tradeops.cli.common import apply_file
from tradeops.store import DrDrill, session_for

from conftest import run_flow

TRADEOPS = str(Path(sys.executable).parent / "tradeops")


def run(flow, **params):
    return run_flow(flow, **params)


def scratch_left(env) -> list[str]:
    with psycopg2.connect(env.platform.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (SCRATCH_DB_PREFIX + "%",))
        names = [r[0] for r in cur.fetchall()]
    folders = list((env.data_dir / "drills").rglob(".scratch-*")) if (env.data_dir / "drills").exists() else []
    return names + [str(f) for f in folders]


def swap_offsite_artifact(env, target: str, kind: str, new_file: Path) -> None:
    """Replace an artifact offsite and re-sign the manifest for it, keeping the old details: a
    backup whose bytes are self-consistent but whose content differs from what was recorded."""
    storage = OffsiteStorage.load(f"{env.name}-offsite")
    manifest, _ = offsite_manifest(storage, env.name, env.set_id)
    entry = manifest.artifact(target, kind)
    entry.sha256 = hashlib.sha256(new_file.read_bytes()).hexdigest()
    entry.size = new_file.stat().st_size
    storage.delete(entry.offsite_key)
    storage.upload_file(new_file, entry.offsite_key, sha256=entry.sha256)
    with tempfile.TemporaryDirectory() as tmp:
        write_manifest(Path(tmp), manifest)
        for name in ("manifest.json", "manifest.json.copy"):
            key = f"{env.name}/{env.set_id}/{name}"
            storage.delete(key)
            storage.upload_file(Path(tmp) / name, key)


def test_drill_restores_every_target_and_leaves_nothing(backed_up):
    env = {**os.environ, "PREFECT_API_URL": os.environ["TRADEOPS_TEST_API_URL"]}
    done = subprocess.run([TRADEOPS, "run", "dr-drill", "--set", f"environment={backed_up.name}", "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
    assert result["passed"] and result["set_id"] == backed_up.set_id
    assert result["rto_seconds"] > 0 and 0 <= result["rpo_seconds"] < 3600
    targets = {t["target"]: t for t in result["targets"]}
    assert {"db:platform", "git:momentum_alpha", "config:platform-config", "logs:platform"} <= set(targets)
    assert all(t["passed"] and t["rto_seconds"] > 0 for t in targets.values())
    assert scratch_left(backed_up) == []
    with session_for(backed_up.store) as session:
        drills = session.exec(select(DrDrill)).all()
    assert len(drills) == 1 and drills[0].passed and drills[0].rto_seconds == pytest.approx(result["rto_seconds"])


def test_flipped_offsite_byte_fails_the_drill_naming_the_target(backed_up):
    key = f"tradeops/{backed_up.name}/{backed_up.set_id}/git/regime_switch.bundle"
    obj = backed_up.s3.get_object(Bucket=backed_up.bucket, Key=key)
    body = bytearray(obj["Body"].read())
    body[len(body) // 2] ^= 0x01
    backed_up.s3.put_object(Bucket=backed_up.bucket, Key=key, Body=bytes(body), Metadata=obj["Metadata"])
    state, result = run(dr_drill, environment=backed_up.name)
    assert state.is_failed()
    assert "git:regime_switch: offsite object" in state.message and "SHA-256" in state.message
    assert [t["target"] for t in result["targets"] if not t["passed"]] == ["git:regime_switch"]
    assert scratch_left(backed_up) == []


def test_deleted_offsite_object_fails_the_drill(backed_up):
    backed_up.s3.delete_object(Bucket=backed_up.bucket,
                               Key=f"tradeops/{backed_up.name}/{backed_up.set_id}/db/platform.dump")
    state, _ = run(dr_drill, environment=backed_up.name)
    assert state.is_failed()
    assert "db:platform: offsite object" in state.message and "is missing" in state.message
    assert scratch_left(backed_up) == []


def test_changed_rows_under_the_old_manifest_fail_the_drill(backed_up, tmp_path):
    url = backed_up.platform.database_url
    with psycopg2.connect(url) as conn, conn.cursor() as cur:  # same row count, one row changed
        cur.execute("UPDATE positions SET quantity = quantity + 1 WHERE position_id = "
                    "(SELECT min(position_id) FROM positions)")
    try:
        dump_postgres(url, tmp_path / "changed.dump")
    finally:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("UPDATE positions SET quantity = quantity - 1 WHERE position_id = "
                        "(SELECT min(position_id) FROM positions)")
    swap_offsite_artifact(backed_up, "db:platform", "pg_dump", tmp_path / "changed.dump")
    state, _ = run(dr_drill, environment=backed_up.name)
    assert state.is_failed()
    assert "db:platform: public.positions: content checksum" in state.message
    assert scratch_left(backed_up) == []


def test_moved_git_ref_fails_the_drill(backed_up, tmp_path):
    clone = tmp_path / "moved.git"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(backed_up.platform.repos_dir / "momentum_alpha"),
                    str(clone)], check=True)
    head = subprocess.run(["git", "-C", str(clone), "symbolic-ref", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run(["git", "-C", str(clone), "update-ref", head, f"{head}~1"], check=True)
    subprocess.run(["git", "-C", str(clone), "bundle", "create", str(tmp_path / "moved.bundle"), "--all"],
                   check=True, capture_output=True)
    swap_offsite_artifact(backed_up, "git:momentum_alpha", "git_bundle", tmp_path / "moved.bundle")
    state, _ = run(dr_drill, environment=backed_up.name)
    assert state.is_failed()
    assert f"git:momentum_alpha: ref {head} points at" in state.message and "the manifest says" in state.message
    assert scratch_left(backed_up) == []


def test_s3_endpoint_down_fails_clearly_and_leaves_nothing(backed_up):
    apply_file(backed_up.config, [("environment.name", backed_up.name),
                                  ("environment.data_dir", str(backed_up.data_dir)),
                                  ("ops_store.url", backed_up.store),
                                  ("offsite.url", f"s3://{backed_up.bucket}/tradeops"),
                                  ("offsite.endpoint_url", "http://127.0.0.1:9"), ("offsite.retries", 0)],
               quiet=True)
    state, _ = run(dr_drill, environment=backed_up.name)
    assert state.is_failed()
    assert "Could not connect to the endpoint URL" in state.message
    assert scratch_left(backed_up) == []


def test_restore_refuses_a_non_empty_database_then_overwrites_with_an_emergency_backup(backed_up):
    url = backed_up.platform.database_url
    existing = f"{url.rsplit('/', 1)[1]}_restored_{backed_up.set_id[:8]}"
    target_url = f"{url.rsplit('/', 1)[0]}/{existing}"
    admin(url, f'DROP DATABASE IF EXISTS "{existing}"', f'CREATE DATABASE "{existing}"')
    try:
        with psycopg2.connect(target_url) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
        state, result = run(restore, environment=backed_up.name, targets=["db:platform"])
        assert state.is_failed()
        assert f"database {existing} exists and holds 1 table(s)" in state.message
        with psycopg2.connect(target_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM keep_me")
            assert cur.fetchall() == [(42,)]  # nothing changed
        assert not (backed_up.data_dir / "backups" / backed_up.name / "emergency").exists()

        state, result = run(restore, environment=backed_up.name, targets=["db:platform"], overwrite=True)
        assert state.is_completed(), state.message
        emergency = Path(result["emergency_backups"]["db:platform"])
        listing = subprocess.run(["pg_restore", "--list", str(emergency)], capture_output=True, text=True)
        assert "TABLE public keep_me" in listing.stdout
        with psycopg2.connect(target_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('keep_me'), count(*) FROM positions")
            assert cur.fetchone()[0] is None
    finally:
        admin(url, f'DROP DATABASE IF EXISTS "{existing}" WITH (FORCE)')


def admin(url: str, *statements: str) -> None:
    conn = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    for statement in statements:
        conn.cursor().execute(statement)
    conn.close()


def test_restore_git_and_files_into_a_folder_from_offsite(backed_up, tmp_path):
    state, result = run(restore, environment=backed_up.name, source="offsite", directory=str(tmp_path / "r"),
                        date=f"{backed_up.set_id[:4]}-{backed_up.set_id[4:6]}-{backed_up.set_id[6:8]}",
                        targets=["git:momentum_alpha", "config:platform-config"])
    assert result["set_id"] == backed_up.set_id
    assert state.is_completed(), state.message
    refs = subprocess.run(["git", "-C", str(tmp_path / "r" / "git" / "momentum_alpha.git"), "for-each-ref",
                           "--format=%(refname) %(objectname)"], capture_output=True, text=True, check=True)
    live = subprocess.run(["git", "-C", str(backed_up.platform.repos_dir / "momentum_alpha"), "for-each-ref",
                           "--format=%(refname) %(objectname)"], capture_output=True, text=True, check=True)
    assert refs.stdout == live.stdout
    config = next((tmp_path / "r" / "files" / "config-platform-config").rglob("rbac.yml"))
    assert config.read_bytes() == (Path(backed_up.platform.config_dir) / "rbac.yml").read_bytes()
    state, _ = run(restore, environment=backed_up.name, directory=str(tmp_path / "r"),
                   targets=["git:momentum_alpha"])
    assert state.is_failed() and "is not empty" in state.message


def test_every_set_carries_recovery_instructions_that_check_out(backed_up):
    set_dir = next(p for p in (backed_up.data_dir / "backups" / backed_up.name).iterdir() if p.name == backed_up.set_id)
    doc = (set_dir / "RECOVERY.md").read_text()
    sums = doc.split("sha256sum -c <<'SUMS'\n", 1)[1].split("SUMS\n", 1)[0]
    checked = subprocess.run(["sha256sum", "-c"], input=sums, cwd=set_dir, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "pg_restore --no-owner --dbname=platform_restored db/platform.dump" in doc
    assert "| public.positions |" in doc  # the row counts a good restore must show
    key = f"tradeops/{backed_up.name}/{backed_up.set_id}/RECOVERY.md"
    assert backed_up.s3.get_object(Bucket=backed_up.bucket, Key=key)["Body"].read().decode() == doc


def test_leftovers_of_a_killed_drill_are_swept_at_the_next_start(backed_up):
    from flows.dr_drill import scratch_prefix

    leftover = f"{scratch_prefix(backed_up.name)}deadbeef_platform"
    admin(backed_up.platform.database_url, f'CREATE DATABASE "{leftover}"')
    folder = backed_up.data_dir / "drills" / backed_up.name / ".scratch-deadbeef"
    (folder / "fetched").mkdir(parents=True)
    state, result = run(dr_drill, environment=backed_up.name)
    assert state.is_completed(), state.message
    assert scratch_left(backed_up) == []


def test_encrypted_sets_drill_with_the_key_and_fail_without_it(backup_env):
    from prefect.blocks.system import Secret

    Secret(value=os.urandom(32).hex()).save(f"{backup_env.name}-backup-key", overwrite=True)
    overrides = [("environment.name", backup_env.name), ("environment.data_dir", str(backup_env.data_dir)),
                 ("ops_store.url", backup_env.store), ("offsite.url", f"s3://{backup_env.bucket}/tradeops"),
                 ("offsite.endpoint_url", backup_env.s3.meta.endpoint_url),
                 ("backups.encryption_key_block", f"{backup_env.name}-backup-key")]
    apply_file(backup_env.config, overrides, quiet=True)
    assert run(daily_backup, environment=backup_env.name)[0].is_completed()
    assert run(verify_backups, environment=backup_env.name)[0].is_completed()
    state, result = run(dr_drill, environment=backup_env.name)
    assert state.is_completed(), state.message
    assert all(t["passed"] for t in result["targets"])

    Secret(value=os.urandom(32).hex()).save(f"{backup_env.name}-backup-key", overwrite=True)  # wrong key
    state, _ = run(dr_drill, environment=backup_env.name)
    assert state.is_failed() and "db:platform: cannot decrypt platform.dump.enc" in state.message
    assert scratch_left(backup_env) == []


def test_restore_names_bad_parameters_and_touches_nothing(backed_up, tmp_path):
    state, _ = run(restore, environment=backed_up.name, source="tape")
    assert state.is_failed() and "source must be auto, local or offsite, not 'tape'" in state.message
    state, _ = run(restore, environment=backed_up.name, targets=["git:nope"], directory=str(tmp_path / "r"))
    assert state.is_failed() and f"set {backed_up.set_id} holds no git:nope; it holds " in state.message
    state, _ = run(restore, environment=backed_up.name, set_id="20200101T000000Z-daily-00000000")
    assert state.is_failed() and "has no complete set 20200101T000000Z-daily-00000000" in state.message
    assert not (tmp_path / "r").exists()
