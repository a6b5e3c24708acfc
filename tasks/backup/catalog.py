"""The backup catalog in the ops store: sets, their artifacts, what was verified when."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import select

from tasks.backup.kinds import COMPLIANCE, kinds_of_class
from tasks.backup.manifest import Manifest
from tradeops.store import BackupArtifact, BackupSet, session_for
from tradeops.store.models import utcnow
from tradeops.store.records import current_flow_run_id

# Retention per artifact class in days (runbook 000: git 30 days, experiment database 90 days;
# weekly sets 12 weeks, the audit trail 7 years). Applied by the retention step to each artifact
# on its own; recorded as expires_at on every artifact. Emergency sets (what a restore replaced,
# runbook 000 "Emergency Procedures", which names no period) are kept as long as the dumps: 90 days.
# `pitr` is point-in-time recovery's window (no runbook names one): base backups and WAL expire so a
# restore to any time in the last 30 days stays possible (tasks/pitr/expire.py); the daily dumps
# cover 90 days at a day's resolution.
RETENTION_DAYS = {"daily:git_bundle": 30, "daily:pg_dump": 90, "daily:sqlite_db": 90, "daily:csv": 90,
                  "daily:tar": 30, "weekly": 84, "weekly:audit_log": 7 * 365, "emergency": 90, "pitr": 30}
PITR_RETENTION_CLASS = "pitr"
# Sets that hold what something else replaced, not the targets' own state: never the newest set of
# a target, never chosen by default for a restore or a drill.
SIDE_KINDS = frozenset({"emergency"})


# Compliance-class artifacts get S3 Object Lock (compliance mode) until they expire, where the
# bucket has Object Lock enabled: database dumps and audit logs (runbook 000: 90 days, 7 years).
COMPLIANCE_KINDS = kinds_of_class(COMPLIANCE)  # pg_dump, sqlite_db, csv, audit_log


def retention_days(set_kind: str, artifact_kind: str, policy: dict[str, int]) -> int:
    """Days an artifact of this class is kept: the environment's override, else the default."""
    merged = {**RETENTION_DAYS, **policy}
    return merged.get(f"{set_kind}:{artifact_kind}", merged.get(set_kind, 30))


def pitr_window_days(policy: dict[str, int]) -> int:
    """Point-in-time recovery's window in days: the environment's override, else the default."""
    return {**RETENTION_DAYS, **policy}[PITR_RETENTION_CLASS]


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


def mark_offsite(store_url: str, set_id: str, offsite_url: str) -> None:
    """The whole set (artifacts, RECOVERY.md, manifests) is in the offsite store at `offsite_url`."""
    with session_for(store_url) as session:
        backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == set_id)).one()
        backup_set.offsite_url = offsite_url
        session.add(backup_set)
        session.commit()


def sets_not_offsite(store_url: str, environment: str, offsite_url: str) -> list[BackupSet]:
    """Complete sets the offsite store at `offsite_url` does not hold whole: their copy was cut
    short (a killed or failed upload), or they were copied to another store before this one."""
    with session_for(store_url) as session:
        return list(session.exec(select(BackupSet).where(
            BackupSet.environment == environment, BackupSet.status == "complete",
            (BackupSet.offsite_url.is_(None)) | (BackupSet.offsite_url != offsite_url))
            .order_by(BackupSet.created_at)).all())


def fail_set(store_url: str, set_id: str) -> None:
    with session_for(store_url) as session:
        backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == set_id)).one()
        backup_set.status = "failed"
        session.add(backup_set)
        session.commit()


def last_verified(store_url: str, environment: str, target: str, kind: str) -> BackupArtifact | None:
    query = (select(BackupArtifact).join(BackupSet, BackupSet.set_id == BackupArtifact.set_id)
             .where(BackupSet.environment == environment, BackupSet.status == "complete",
                    BackupSet.kind.not_in(SIDE_KINDS), BackupArtifact.removed_at.is_(None),
                    BackupArtifact.target == target, BackupArtifact.kind == kind,
                    BackupArtifact.verified_at.is_not(None))
             .order_by(BackupArtifact.created_at.desc()).limit(1))
    with session_for(store_url) as session:
        return session.exec(query).first()


# Every kept set is read back in full (local bytes, offsite bytes, manifests) at least this often,
# as restic's `check --read-data` and pgBackRest's `verify` cover the whole repository: a set
# verified more than REVERIFY_DAYS - 1 days ago is verified again by the next verify-backups run,
# so with daily runs no set goes unverified for REVERIFY_DAYS.
REVERIFY_DAYS = 7


def sets_to_verify(store_url: str, environment: str, now: datetime) -> list[BackupSet]:
    """The newest complete set of every target, and every kept set not verified in the last
    REVERIFY_DAYS - 1 days (or never), oldest first."""
    stale_before = now - timedelta(days=REVERIFY_DAYS - 1)
    wanted = {s.set_id: s for s in newest_sets_per_target(store_url, environment)}
    with session_for(store_url) as session:
        for backup_set in session.exec(select(BackupSet).where(
                BackupSet.environment == environment, BackupSet.status == "complete")).all():
            verified = backup_set.verified_at
            if verified is None or _utc(verified) <= stale_before:
                wanted.setdefault(backup_set.set_id, backup_set)
    return sorted(wanted.values(), key=lambda s: _utc(s.created_at))


def removed_artifacts(store_url: str, set_id: str) -> set[tuple[str, str]]:
    """(target, kind) of the set's artifacts that retention removed."""
    with session_for(store_url) as session:
        return {(a.target, a.kind) for a in session.exec(select(BackupArtifact).where(
            BackupArtifact.set_id == set_id, BackupArtifact.removed_at.is_not(None))).all()}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def newest_sets_per_target(store_url: str, environment: str) -> list[BackupSet]:
    """The newest complete set holding each target, oldest first, without duplicates."""
    query = (select(BackupSet, BackupArtifact.target)
             .join(BackupArtifact, BackupArtifact.set_id == BackupSet.set_id)
             .where(BackupSet.environment == environment, BackupSet.status == "complete",
                    BackupSet.kind.not_in(SIDE_KINDS), BackupArtifact.removed_at.is_(None))
             .order_by(BackupSet.created_at.desc()))
    newest: dict[str, BackupSet] = {}
    with session_for(store_url) as session:
        for backup_set, target in session.exec(query).all():
            newest.setdefault(target, backup_set)
    return sorted({s.set_id: s for s in newest.values()}.values(), key=lambda s: s.created_at)


def mark_verified(store_url: str, set_id: str, verified: list[tuple[str, str]], whole_set: bool) -> None:
    """Record what verified now; what did not loses its earlier verification (a set found corrupt
    on re-verification is no longer one a restore or the drill picks as verified)."""
    now = utcnow()
    with session_for(store_url) as session:
        for artifact in session.exec(select(BackupArtifact).where(BackupArtifact.set_id == set_id,
                                                                  BackupArtifact.removed_at.is_(None))).all():
            artifact.verified_at = now if (artifact.target, artifact.kind) in verified else None
            session.add(artifact)
        backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == set_id)).one()
        backup_set.verified_at = now if whole_set else None
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
        query = query.where(BackupSet.kind.not_in(SIDE_KINDS))
        if verified_only:
            query = query.where(BackupSet.verified_at.is_not(None))
        if on_date:
            day = datetime(on_date.year, on_date.month, on_date.day, tzinfo=timezone.utc)
            query = query.where(BackupSet.created_at >= day, BackupSet.created_at < day + timedelta(days=1))
    with session_for(store_url) as session:
        return session.exec(query.order_by(BackupSet.created_at.desc())).first()
