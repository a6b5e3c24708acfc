"""Backup freshness, verification and size per target, from the backup catalog (the same rows
the health check grades backup age by: the newest artifact of each target in a complete set)."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from prometheus_client.core import Metric
from sqlalchemy import func
from sqlmodel import select

from tasks.metrics.families import epoch, family
from tradeops.store import BackupArtifact, BackupSet, session_for


def backup_families(store_url: str, environment: str, now: datetime) -> Iterator[Metric]:
    complete = (BackupSet.environment == environment, BackupSet.status == "complete")
    with session_for(store_url) as session:
        per_set = session.exec(
            select(BackupArtifact.target, BackupArtifact.set_id, func.max(BackupArtifact.created_at),
                   func.sum(BackupArtifact.size), func.max(BackupArtifact.verified_at))
            .join(BackupSet, BackupSet.set_id == BackupArtifact.set_id).where(*complete)
            .group_by(BackupArtifact.target, BackupArtifact.set_id)).all()
        sets = session.exec(select(BackupSet.kind, BackupSet.status, func.count())
                            .where(BackupSet.environment == environment)
                            .group_by(BackupSet.kind, BackupSet.status)).all()
    newest: dict[str, tuple[float, float]] = {}  # target -> (made, size) of its newest complete set
    verified: dict[str, float] = {}
    for target, _set_id, made, size, checked in per_set:
        made = epoch(made)
        if target not in newest or made > newest[target][0]:
            newest[target] = (made, float(size or 0))
        if checked is not None:
            verified[target] = max(verified.get(target, 0.0), epoch(checked))
    last, age, size = (family("tradeops_backup_last_success_timestamp_seconds"),
                       family("tradeops_backup_age_seconds"), family("tradeops_backup_size_bytes"))
    for target, (made, total) in sorted(newest.items()):
        last.add_metric([environment, target], made)
        age.add_metric([environment, target], max(0.0, now.timestamp() - made))
        size.add_metric([environment, target], total)
    last_verified = family("tradeops_backup_last_verified_timestamp_seconds")
    for target, moment in sorted(verified.items()):
        last_verified.add_metric([environment, target], moment)
    counts = family("tradeops_backup_sets")
    for kind, status, n in sorted(sets):
        counts.add_metric([environment, kind, status], n)
    yield from (last, age, size, last_verified, counts)
