"""Backup check: age of each target's newest artifact in a complete set of the backup catalog."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func
from sqlmodel import select

from tasks.backup.catalog import SIDE_KINDS
from tasks.health.result import CheckResult, graded, skipped
from tasks.health.thresholds import Threshold
from tradeops.clock import utcnow
from tradeops.store import BackupArtifact, BackupSet, session_for


def check_backup_age(store_url: str, environment: str, threshold: Threshold,
                     now: datetime | None = None) -> list[CheckResult]:
    now = now or utcnow()
    query = (
        select(BackupArtifact.target, func.max(BackupArtifact.created_at))
        .join(BackupSet, BackupSet.set_id == BackupArtifact.set_id)
        .where(BackupSet.status == "complete", BackupSet.environment == environment,
               BackupSet.kind.not_in(SIDE_KINDS))
        .group_by(BackupArtifact.target)
    )
    with session_for(store_url) as session:
        newest = session.exec(query).all()
    if not newest:
        return [skipped("backups", "backup_age", "no complete backup set in the catalog yet")]
    results = []
    for target, created in sorted(newest):
        created = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        age_h = (now - created).total_seconds() / 3600
        results.append(graded(f"backup:{target}", "backup_age", threshold, age_h,
                              f"newest complete backup is {age_h:.1f} h old"))
    return results
