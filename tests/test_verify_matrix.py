"""verify-backups covers every file of a set, locally and offsite (issue 22): a bit flipped in any
file, or any file deleted, fails it naming that file. Manifests, their copies and RECOVERY.md
included; a manifest that disagrees with its copy is a failure, not silently repaired.

Offsite objects are corrupted as bit rot would: the bytes change, the size and the SHA-256 kept
in the object's metadata do not, so only reading the bytes back catches it.
"""

from __future__ import annotations

from pathlib import Path

from flows.verify_backups import verify_backups
from tasks.backup.manifest import read_manifest, write_manifest

from conftest import run_flow


def flipped(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def test_every_corruption_of_a_set_local_or_offsite_fails_verify_backups(backed_up):
    env, s3, prefix = backed_up, backed_up.s3, f"tradeops/{backed_up.name}/{backed_up.set_id}/"
    local_files = sorted(p for p in env.set_dir.rglob("*") if p.is_file())
    objects = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=env.bucket, Prefix=prefix)["Contents"])
    assert {p.name for p in local_files} >= {"manifest.json", "manifest.json.copy", "RECOVERY.md", "platform.dump"}
    assert len(objects) == len(local_files)  # everything local is offsite too

    missed, rows = [], []

    def check(case: str, name: str) -> None:
        state, result = run_flow(verify_backups, environment=env.name)
        caught = state.is_failed() and name in state.message
        rows.append((case, "caught" if caught else "MISSED"))
        if not caught:
            missed.append(f"{case}: {state.name}: {state.message}")

    for path in local_files:
        original = path.read_bytes()
        relative = str(path.relative_to(env.set_dir))
        path.write_bytes(flipped(original))
        check(f"local {relative}: one bit flipped", path.name)
        path.unlink()
        check(f"local {relative}: deleted", path.name)
        path.write_bytes(original)
    for key in objects:
        head = s3.get_object(Bucket=env.bucket, Key=key)
        original, metadata = head["Body"].read(), head.get("Metadata", {})
        s3.put_object(Bucket=env.bucket, Key=key, Body=flipped(original), Metadata=metadata)
        check(f"offsite {key.removeprefix(prefix)}: one bit flipped", key.removeprefix("tradeops/"))
        s3.put_object(Bucket=env.bucket, Key=key, Body=original, Metadata=metadata)

    # both manifests intact, but different: the copy re-signed for another artifact list
    manifest, _ = read_manifest(env.set_dir)
    copy = env.set_dir / "manifest.json.copy"
    original_copy = copy.read_bytes()
    manifest.artifacts = manifest.artifacts[1:]
    write_manifest(Path(env.set_dir), manifest)  # writes both...
    (env.set_dir / "manifest.json").write_bytes(original_copy)  # ...then the primary goes back
    check("local manifest.json and its copy disagree", "disagree")
    copy.write_bytes(original_copy)

    print("\n" + "\n".join(f"{case:<70} {outcome}" for case, outcome in rows))
    assert len(rows) >= 2 * len(local_files) + len(objects) + 1
    assert missed == []
    state, _ = run_flow(verify_backups, environment=env.name)
    assert state.is_completed(), state.message  # every file put back: the set verifies again
