"""Expiry of point-in-time recovery's base backups and WAL, by a recovery window (pgBackRest's
`expire` with time-based full retention; Barman's `RECOVERY WINDOW OF n DAYS`).

The window is the retention class `pitr` (tasks/backup/catalog.py RETENTION_DAYS, overridden by
`[backups] retention_days`): a restore to any time in [now - window, now] must stay possible. So
kept are every base backup that stopped inside the window and the newest one that stopped at or
before its start (a restore to the window's first second starts from that one); the others expire. WAL is
expired per cluster (system identifier) only where a kept backup exists: every file whose segment
comes before the oldest kept backup's start segment, on any timeline; timeline history files are
kept (a few bytes, and a restore reads them). A cluster with no kept backup keeps its WAL.

An expired backup's backup.json goes first, so a restore never chooses a backup whose files are
half gone; then its other files; then the WAL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from blocks import OffsiteStorage
from tasks.pitr.basebackup import base_backups
from tasks.pitr.layout import BACKUP_INFO, archive_prefix, base_prefix, wal_prefix
from tradeops.wal.names import parse_archived, parse_segment


@dataclass(frozen=True)
class ExpiryPlan:
    """What one target's expiry keeps and removes."""
    target: str
    window_start: datetime
    kept: tuple[str, ...] = ()  # backup ids, oldest first
    expired: tuple[str, ...] = ()
    wal_keys: tuple[str, ...] = ()  # archived WAL files to remove
    untouched_clusters: tuple[int, ...] = field(default=())  # clusters with WAL but no kept backup

    def as_dict(self) -> dict:
        return {"target": self.target, "window_start": self.window_start.isoformat(), "kept": list(self.kept),
                "expired": list(self.expired), "wal_files_removed": len(self.wal_keys),
                "first_wal_removed": _file(self.wal_keys[0]) if self.wal_keys else None,
                "last_wal_removed": _file(self.wal_keys[-1]) if self.wal_keys else None,
                "clusters_without_kept_backup": list(self.untouched_clusters)}


def _file(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def kept_backups(backups: list, window_start: datetime) -> list:
    """Of `backups` (oldest first by stop time): those that stopped after the window's start, and
    the newest that stopped at or before it (a restore to the start begins there)."""
    before = [b for b in backups if b.stopped_at <= window_start]
    return before[-1:] + [b for b in backups if b.stopped_at > window_start]


def wal_before(keys: list[str], start_segment, segment_size: int) -> list[str]:
    """The archived WAL files among `keys` whose segment comes before `start_segment` (any
    timeline); history files and names that are not WAL are never listed."""
    drop = []
    for key in keys:
        archived = parse_archived(_file(key))
        segment = parse_segment(archived[0], segment_size) if archived else None
        if segment is not None and segment.number < start_segment.number:
            drop.append(key)
    return sorted(drop)


def plan_pitr_expiry(storage: OffsiteStorage, environment: str, target: str, now: datetime,
                     window_days: int) -> ExpiryPlan:
    window_start = now - timedelta(days=window_days)
    backups = base_backups(storage, environment, target)
    kept = kept_backups(backups, window_start)
    kept_ids = {b.backup_id for b in kept}
    wal_keys, untouched = [], []
    for system in sorted({b.system_identifier for b in backups}):
        ours = [b for b in kept if b.system_identifier == system]
        prefix = archive_prefix(environment, target, system)
        if not ours:
            untouched.append(system)
            continue
        oldest = min(ours, key=lambda b: b.start_segment().number)
        wal_keys += wal_before(storage.list_keys(wal_prefix(prefix)), oldest.start_segment(), oldest.wal_segment_size)
    return ExpiryPlan(target, window_start, tuple(b.backup_id for b in kept),
                      tuple(b.backup_id for b in backups if b.backup_id not in kept_ids), tuple(wal_keys),
                      tuple(untouched))


def expire_pitr(storage: OffsiteStorage, environment: str, target: str, now: datetime, window_days: int,
                dry_run: bool = False) -> ExpiryPlan:
    """Plan and (unless `dry_run`) carry out the target's expiry; returns the plan."""
    plan = plan_pitr_expiry(storage, environment, target, now, window_days)
    if dry_run:
        return plan
    backups = {b.backup_id: b for b in base_backups(storage, environment, target)}
    for backup_id in plan.expired:
        backup = backups[backup_id]
        prefix = base_prefix(archive_prefix(environment, target, backup.system_identifier), backup_id)
        storage.delete(f"{prefix}/{BACKUP_INFO}")
        for key in storage.list_keys(prefix + "/"):
            storage.delete(key)
    for key in plan.wal_keys:
        storage.delete(key)
    return plan
