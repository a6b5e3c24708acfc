"""Reused git bundles and the offsite store configured now (issues 20 and 22): a bundle unchanged
since the last verified backup is reused only where the offsite store holds exactly its bytes.

- Another bucket: the reused bundles are copied into it, so the new set is whole there.
- Encryption turned on: the reused bundle is sealed locally, and its sealed bytes go offsite; no
  encrypted set points at an earlier plaintext object.
"""

from __future__ import annotations

import os
import uuid

from prefect.blocks.system import Secret

from flows.daily_backup import daily_backup
from flows.verify_backups import verify_backups
from tasks.backup.encryption import MAGIC
from tradeops.cli.common import apply_file

from conftest import run_flow


def apply_with(env, **overrides: str) -> None:
    apply_file(env.config, [("environment.name", env.name), ("environment.data_dir", str(env.data_dir)),
                            ("ops_store.url", env.store), ("offsite.endpoint_url", env.s3.meta.endpoint_url),
                            *overrides.items()], quiet=True)


def backup_and_verify(env) -> dict:
    state, result = run_flow(daily_backup, environment=env.name)
    assert state.is_completed(), state.message
    state, _ = run_flow(verify_backups, environment=env.name)
    assert state.is_completed(), state.message
    return result


def test_a_new_bucket_receives_the_reused_bundles_too(backed_up):
    other = f"other-{uuid.uuid4().hex[:8]}"
    backed_up.s3.create_bucket(Bucket=other)
    apply_with(backed_up, **{"offsite.url": f"s3://{other}/tradeops"})
    result = backup_and_verify(backed_up)
    bundles = [a for a in result["artifacts"] if a["kind"] == "git_bundle"]
    assert bundles and all(a["reused_from"] == backed_up.set_id for a in bundles)  # reused locally...
    for artifact in result["artifacts"]:  # ...and every artifact is in the new bucket
        head = backed_up.s3.head_object(Bucket=other, Key=f"tradeops/{artifact['offsite_key']}")
        assert head["ContentLength"] == artifact["size"]
        assert head["Metadata"]["sha256"] == artifact["sha256"]
    assert all(a["offsite_key"].startswith(f"{backed_up.name}/{result['set_id']}/") for a in bundles)

    second = backup_and_verify(backed_up)  # and from then on, reused offsite as well
    assert {a["offsite_key"] for a in second["artifacts"] if a["kind"] == "git_bundle"} == \
        {a["offsite_key"] for a in bundles}


def test_turning_encryption_on_seals_reused_bundles_offsite_too(backed_up):
    Secret(value=os.urandom(32).hex()).save(f"{backed_up.name}-backup-key", overwrite=True)
    apply_with(backed_up, **{"offsite.url": f"s3://{backed_up.bucket}/tradeops",
                             "backups.encryption_key_block": f"{backed_up.name}-backup-key"})
    for _ in range(2):  # two daily runs, each verified
        result = backup_and_verify(backed_up)
        for artifact in result["artifacts"]:
            assert artifact["offsite_key"].endswith(".enc"), artifact
            body = backed_up.s3.get_object(Bucket=backed_up.bucket, Key=f"tradeops/{artifact['offsite_key']}")
            assert body["Body"].read(len(MAGIC)) == MAGIC  # sealed bytes offsite, not the plaintext bundle
    recovery = (backed_up.data_dir / "backups" / backed_up.name / result["set_id"] / "RECOVERY.md").read_text()
    assert f"/{backed_up.set_id}/git/" not in recovery  # no instruction copies the old plaintext bundle
