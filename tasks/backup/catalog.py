"""The backup catalog in the ops store: sets, their artifacts, what was verified when."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import select

from tasks.backup.manifest import Manifest
from tradeops.store import BackupArtifact, BackupSet, session_for
from tradeops.store.models import utcnow
from tradeops.store.records import current_flow_run_id

# Retention per artifact class in days (runbook 000: git 30 days, experiment database 90 days;
# weekly sets 12 weeks). Applied by the retention step; recorded as expires_at on every artifact.
RETENTION_DAYS = {"daily:git_bundle": 30, "daily:pg_dump": 90, "daily:sqlite_db": 90, "daily:csv": 90,
                  "daily:tar": 30, "weekly": 84, "weekly:audit_log": 7 * 365}


# Compliance-class artifacts get S3 Object Lock (compliance mode) until they expire, where the
# bucket has Object Lock enabled: database dumps and audit logs (runbook 000: 90 days, 7 years).
COMPLIANCE_KINDS = frozenset({"pg_dump", "sqlite_db", "csv", "audit_log"})


def retention_days(set_kind: str, artifact_kind: str, policy: dict[str, int]) -> int:
    """Days an artifact of this class is kept: the environment's override, else the default."""
    merged = {**RETENTION_DAYS, **policy}
    return merged.get(f"{set_kind}:{artifact_kind}", merged.get(set_kind, 30))


def expires_at(set_kind: str, artifact_kind: str, created: datetime, policy: dict[str, int]) -> datetime:
    return created + timedelta(days=retention_days(set_kind, artifact_kind, policy))


def open_set(store_url: str, set_id: str, environment: str, kind: str) -> None:
    with session_for(store_url) as session:
        session.add(BackupSet(set_id=set_id, environment=environment, kind=kind, status="pending",
                              flow_run_id=current_flow_run_id()))
        session.commit()


def complete_set(store_url: str, manifest: Manifest, set_dir: Path, policy: dict[str, int]) -> None:
    """Catalogue every artifact and mark the set complete, in one transaction."""
    created = datetime.fromisoformat(manifest.created_at)
    with session_for(store_url) as session:
        backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == manifest.set_id)).one()
        for entry in manifest.artifacts:
            session.add(BackupArtifact(
                set_id=manifest.set_id, target=entry.target, kind=entry.kind, path=str(set_dir / entry.path),
                sha256=entry.sha256, size=entry.size, created_at=created, reused_from=entry.reused_from,
                offsite_key=entry.offsite_key, expires_at=expires_at(manifest.kind, entry.kind, created, policy),
                details=json.dumps(entry.details, sort_keys=True), flow_run_id=current_flow_run_id(),
            ))
        backup_set.status, backup_set.completed_at = "complete", utcnow()
        backup_set.manifest_path = str(set_dir / "manifest.json")
        session.add(backup_set)
        session.commit()


def fail_set(store_url: str, set_id: str) -> None:
    with session_for(store_url) as session:
        backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == set_id)).one()
        backup_set.status = "failed"
        session.add(backup_set)
        session.commit()


def last_verified(store_url: str, environment: str, target: str, kind: str) -> BackupArtifact | None:
    query = (select(BackupArtifact).join(BackupSet, BackupSet.set_id == BackupArtifact.set_id)
             .where(BackupSet.environment == environment, BackupSet.status == "complete",
                    BackupArtifact.target == target, BackupArtifact.kind == kind,
                    BackupArtifact.verified_at.is_not(None))
             .order_by(BackupArtifact.created_at.desc()).limit(1))
    with session_for(store_url) as session:
        return session.exec(query).first()


def newest_sets_per_target(store_url: str, environment: str) -> list[BackupSet]:
    """The newest complete set holding each target, oldest first, without duplicates."""
    query = (select(BackupSet, BackupArtifact.target)
             .join(BackupArtifact, BackupArtifact.set_id == BackupSet.set_id)
             .where(BackupSet.environment == environment, BackupSet.status == "complete")
             .order_by(BackupSet.created_at.desc()))
    newest: dict[str, BackupSet] = {}
    with session_for(store_url) as session:
        for backup_set, target in session.exec(query).all():
            newest.setdefault(target, backup_set)
    return sorted({s.set_id: s for s in newest.values()}.values(), key=lambda s: s.created_at)


def mark_verified(store_url: str, set_id: str, verified: list[tuple[str, str]], whole_set: bool) -> None:
    now = utcnow()
    with session_for(store_url) as session:
        for artifact in session.exec(select(BackupArtifact).where(BackupArtifact.set_id == set_id)).all():
            if (artifact.target, artifact.kind) in verified:
                artifact.verified_at = now
                session.add(artifact)
        if whole_set:
            backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == set_id)).one()
            backup_set.verified_at = now
            session.add(backup_set)
        session.commit()



def chosen_set(store_url: str, environment: str, set_id: str | None = None, on_date: date | None = None,
               verified_only: bool = True) -> BackupSet | None:
    """A complete set: by id; else the newest created on `on_date` (UTC) or at all, verified
    sets only unless `verified_only` is false."""
    query = select(BackupSet).where(BackupSet.environment == environment, BackupSet.status == "complete")
    if set_id:
        query = query.where(BackupSet.set_id == set_id)
    else:
        if verified_only:
            query = query.where(BackupSet.verified_at.is_not(None))
        if on_date:
            day = datetime(on_date.year, on_date.month, on_date.day, tzinfo=timezone.utc)
            query = query.where(BackupSet.created_at >= day, BackupSet.created_at < day + timedelta(days=1))
    with session_for(store_url) as session:
        return session.exec(query.order_by(BackupSet.created_at.desc())).first()
