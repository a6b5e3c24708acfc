"""Emergency backups (runbook 000 "Emergency Procedures"): before a restore replaces a database,
folder or file, what is there is backed up as a set of its own, kind `emergency`, exactly as the
daily sets are: encrypted when the environment encrypts, catalogued, copied offsite, verified by
verify-backups and expired by retention (90 days). It is never the newest set of a target nor a
restore's default choice; restore it by its set id."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tasks.backup.catalog import fail_set, open_set
from tasks.backup.encryption import load_key, seal_entries
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.publish import publish_set
from tasks.backup.sets import new_set_id, staging_dir
from tasks.backup.targets import archive_replaced_paths, backup_replaced_database
from tasks.environment import LoadedEnvironment
from tasks.locks import lock_for, target_lock
from tradeops.clock import utcnow
from tradeops.store.records import current_flow_run_id


@dataclass(frozen=True)
class ToReplace:
    """What one restore target will replace: a database (its URL) and/or paths."""
    target: str
    database_url: str | None = field(default=None, repr=False)
    paths: tuple[Path, ...] = ()


@dataclass
class EmergencySet:
    set_id: str
    files: dict[str, str]                                    # target -> local file in the set
    offsite_failures: dict[str, str] = field(default_factory=dict)


def take_emergency_set(env: LoadedEnvironment, replaced: list[ToReplace]) -> EmergencySet:
    """Back up everything in `replaced` into one emergency set, holding the environment's backup
    lease (its sweep and retention must not meet a set being written)."""
    with target_lock(lock_for("backup", env.name, "run", env.store_url), f"the backups of {env.name}"):
        now = utcnow().replace(microsecond=0)
        set_id = new_set_id("emergency", now, current_flow_run_id())
        root = env.block.output_dir("backups", env.name)
        staging, final = staging_dir(root, set_id), root / set_id
        open_set(env.store_url, set_id, env.name, "emergency")
        try:
            staging.mkdir(parents=True, mode=0o700)
            entries: list[ArtifactEntry] = []
            for item in replaced:
                if item.database_url is not None:
                    entries += backup_replaced_database(item.target, item.database_url, staging)
                if item.paths:
                    entries += archive_replaced_paths(item.target, list(item.paths), staging)
            key_block = env.block.backup_encryption_key_block
            if key_block:
                entries = seal_entries(entries, staging, load_key(key_block))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            fail_set(env.store_url, set_id)
            raise
        manifest, failures = publish_set(env, "emergency", set_id, now, staging, final, entries)
    files: dict[str, str] = {}
    for entry in manifest.artifacts:
        key = entry.target if entry.target not in files else f"{entry.target} files"
        files[key] = str(final / entry.path)
    return EmergencySet(set_id, files, failures)
