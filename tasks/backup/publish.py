"""Turning a staged backup set into a complete one, the same way for every kind (daily, weekly,
emergency): offsite keys claimed, RECOVERY.md, the manifest and its copy, the rename that makes
the set exist, the catalog, then the offsite copies (manifests last, so an offsite set with a
manifest is whole)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import get_run_logger

from tasks.backup import publish_offsite_task_for
from tasks.backup.catalog import (
    COMPLIANCE_KINDS, complete_set, expires_at, mark_offsite, removed_artifacts, sets_not_offsite,
)
from tasks.backup.manifest import (
    MANIFEST, MANIFEST_COPY, ArtifactEntry, Manifest, ManifestError, read_manifest, write_manifest,
)
from tasks.backup.offsite import claim_offsite_keys, offsite_failure_reason
from tasks.backup.recovery_doc import RECOVERY_DOC, write_recovery_doc
from tasks.backup.sets import finalize_set
from tasks.crash_points import crash_point
from tasks.environment import LoadedEnvironment
from tradeops.files import sha256_file
from tradeops.store.records import current_flow_run_id


def publish_set(env: LoadedEnvironment, kind: str, set_id: str, now: datetime, staging: Path, final: Path,
                entries: list[ArtifactEntry]) -> tuple[Manifest, dict[str, str]]:
    """Complete the staged set `set_id` (locally and in the catalog), then copy it offsite;
    returns its manifest and the offsite failures by key."""
    storage = env.block.offsite()
    claim_offsite_keys(storage, entries, f"{env.name}/{set_id}/")
    manifest = Manifest(set_id=set_id, environment=env.name, kind=kind, created_at=now.isoformat(),
                        flow_run_id=current_flow_run_id(), artifacts=entries)
    doc = write_recovery_doc(staging, final, manifest, storage.url if storage else None,
                             storage.endpoint_url if storage else None, env.block.backup_encryption_key_block)
    manifest.recovery_doc_sha256 = sha256_file(doc)
    crash_point("backup:before-manifest")
    write_manifest(staging, manifest)
    finalize_set(staging, final)
    crash_point("backup:before-catalog")
    complete_set(env.store_url, manifest, final, env.block.backup_retention_days)
    get_run_logger().info("set %s complete locally: %d artifact(s) in %s", set_id, len(entries), final)
    failures = (copy_offsite(storage, final, manifest, set_id, env.name, env.block.backup_retention_days)
                if storage else {})
    if storage is not None and not failures:
        mark_offsite(env.store_url, set_id, storage.url)
    return manifest, failures


def complete_offsite_copies(env: LoadedEnvironment, storage, current_set: str) -> tuple[list[str], dict[str, str]]:
    """Copy to the offsite store configured now every earlier complete set it does not hold whole:
    one whose upload was cut short (a killed run, an outage), or every set after the offsite store
    changed (another bucket), so each kept set stays restorable and verifiable offsite. Artifacts
    retention removed are skipped; reused bundles are uploaded under the key their manifest names.
    Returns the sets completed offsite, and the failures by key."""
    done, failures = [], {}
    for backup_set in sets_not_offsite(env.store_url, env.name, storage.url):
        set_dir = Path(backup_set.manifest_path).parent
        if backup_set.set_id == current_set or not set_dir.is_dir():
            continue
        try:
            manifest, _ = read_manifest(set_dir)
        except ManifestError as exc:
            failures[f"{backup_set.set_id}/manifest.json"] = str(exc)  # verify-backups names it too
            continue
        removed = removed_artifacts(env.store_url, backup_set.set_id)
        missed = copy_offsite(storage, set_dir, manifest, backup_set.set_id, env.name, env.block.backup_retention_days,
                              skip=removed, every_key=True)
        if missed:
            failures.update(missed)
        else:
            mark_offsite(env.store_url, backup_set.set_id, storage.url)
            done.append(backup_set.set_id)
    return done, failures


def copy_offsite(storage, set_dir: Path, manifest: Manifest, set_id: str, environment: str,
                 policy: dict[str, int], skip: set[tuple[str, str]] = frozenset(),
                 every_key: bool = False) -> dict[str, str]:
    """Upload every new artifact (`every_key`: reused ones too, under their earlier set's key;
    never those in `skip`), then RECOVERY.md and the manifest and its copy (last, so an offsite
    set with a manifest is whole); returns the failures by key, each saying whether it was
    retried. An object already there with the same bytes is accepted, so a repeat is cheap."""
    prefix = f"{environment}/{set_id}/"
    created = datetime.fromisoformat(manifest.created_at)
    upload = publish_offsite_task_for(storage)
    files = {e.offsite_key: (set_dir / e.path, e.sha256, e.size,
                             expires_at(manifest.kind, e.kind, created, policy) if e.kind in COMPLIANCE_KINDS else None)
             for e in manifest.artifacts
             if (every_key or e.offsite_key.startswith(prefix)) and (e.target, e.kind) not in skip}
    failures = _await_uploads(storage, {key: upload.submit(storage, path, key, sha256, size, retain_until=until)
                                        for key, (path, sha256, size, until) in files.items()})
    if not failures:
        crash_point("backup:mid-upload")
        manifests = {f"{prefix}{name}": set_dir / name for name in (RECOVERY_DOC, MANIFEST, MANIFEST_COPY)}
        failures = _await_uploads(storage, {key: upload.submit(storage, path, key, sha256_file(path), path.stat().st_size)
                                            for key, path in manifests.items()})
    return failures


def _await_uploads(storage, uploads: dict) -> dict[str, str]:
    failures = {}
    for key, future in uploads.items():
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - reported per key; the local set stays complete
            failures[key] = offsite_failure_reason(exc, attempts=storage.retries + 1)
    return failures


