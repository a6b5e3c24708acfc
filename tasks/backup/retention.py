"""Retention: which backup artifacts have outlived their class's policy, and removing them.

Each artifact expires on its own, by its class (catalog.RETENTION_DAYS: a daily set's git
bundles after 30 days and its dumps after 90; a weekly set's dumps after 12 weeks and its audit
trail after 7 years), counted from its set's creation time, never from names. Its local file and
offsite copy are removed and the catalog marks it `removed_at`; the set stays, with its
manifest and RECOVERY.md, while any artifact of it remains, and goes whole (folder, manifests,
offsite prefix; catalog status `expired`) with its last one.

Never removed: the artifacts of the newest verified set of each target, and offsite objects that
a remaining artifact still points at (a reused git bundle).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import select

from tasks.backup.catalog import SIDE_KINDS, retention_days
from tradeops.clock import utcnow
from tradeops.store import BackupArtifact, BackupSet, session_for


@dataclass(frozen=True)
class ArtifactFacts:
    set_id: str
    target: str
    kind: str
    path: Path | None            # the local file
    offsite_key: str | None
    artifact_id: int | None = None


@dataclass(frozen=True)
class SetFacts:
    set_id: str
    kind: str
    created_at: datetime
    verified: bool
    set_dir: Path | None
    artifacts: tuple[ArtifactFacts, ...]  # the ones not removed yet

    def age_days(self, now: datetime) -> float:
        return (now - self.created_at) / timedelta(days=1)


@dataclass
class RetentionPlan:
    remove: list[ArtifactFacts] = field(default_factory=list)
    expire_sets: list[SetFacts] = field(default_factory=list)   # nothing of them remains after this
    keep_protected: list[tuple[ArtifactFacts, str]] = field(default_factory=list)
    keep_offsite_keys: set[str] = field(default_factory=set)

    @property
    def expire(self) -> list[SetFacts]:  # the sets that go whole
        return self.expire_sets


def plan_retention(sets: list[SetFacts], now: datetime, policy: dict[str, int]) -> RetentionPlan:
    """Pure: decide from catalog facts alone, so the rules are testable at their edges."""
    plan = RetentionPlan()
    newest_verified: dict[str, str] = {}
    for facts in sorted(sets, key=lambda s: s.created_at):
        if facts.verified and facts.kind not in SIDE_KINDS:
            for artifact in facts.artifacts:
                newest_verified[artifact.target] = facts.set_id
    remaining: list[ArtifactFacts] = []
    for facts in sorted(sets, key=lambda s: s.created_at):
        left = 0
        for artifact in facts.artifacts:
            expired = now - facts.created_at >= timedelta(days=retention_days(facts.kind, artifact.kind, policy))
            if expired and newest_verified.get(artifact.target) == facts.set_id:
                plan.keep_protected.append((artifact, f"newest verified set of {artifact.target}"))
            elif expired:
                plan.remove.append(artifact)
                continue
            remaining.append(artifact)
            left += 1
        if not left:
            plan.expire_sets.append(facts)
    plan.keep_offsite_keys = {a.offsite_key for a in remaining if a.offsite_key}
    return plan


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def catalog_facts(store_url: str, environment: str) -> list[SetFacts]:
    with session_for(store_url) as session:
        sets = session.exec(select(BackupSet).where(BackupSet.environment == environment,
                                                    BackupSet.status == "complete")).all()
        artifacts = session.exec(select(BackupArtifact).where(
            BackupArtifact.set_id.in_([s.set_id for s in sets]), BackupArtifact.removed_at.is_(None))).all()
    by_set: dict[str, list[ArtifactFacts]] = {}
    for a in artifacts:
        by_set.setdefault(a.set_id, []).append(ArtifactFacts(a.set_id, a.target, a.kind, Path(a.path),
                                                             a.offsite_key, a.id))
    return [SetFacts(s.set_id, s.kind, _utc(s.created_at), s.verified_at is not None,
                     Path(s.manifest_path).parent if s.manifest_path else None, tuple(by_set.get(s.set_id, ())))
            for s in sets]


@dataclass(frozen=True)
class Deletion:
    """One thing retention deletes: a local path or an offsite key, and why."""
    set_id: str
    what: str     # the artifact (target and kind), or "the set's own files"
    where: str    # "local" or "offsite"
    location: str


def deletions(plan: RetentionPlan, storage, environment: str) -> list[Deletion]:
    """Every local path and offsite key the plan deletes (what a dry run lists)."""
    found = []
    for artifact in plan.remove:
        what = f"{artifact.target} {artifact.kind}"
        if artifact.path is not None and artifact.path.exists():
            found.append(Deletion(artifact.set_id, what, "local", str(artifact.path)))
        if storage is not None and artifact.offsite_key and artifact.offsite_key not in plan.keep_offsite_keys:
            found.append(Deletion(artifact.set_id, what, "offsite", artifact.offsite_key))
    for facts in plan.expire_sets:
        if facts.set_dir is not None and facts.set_dir.exists():
            found.append(Deletion(facts.set_id, "the set's folder", "local", str(facts.set_dir)))
        if storage is not None:
            taken = {d.location for d in found}
            found += [Deletion(facts.set_id, "the set's own files", "offsite", key)
                      for key in storage.list_keys(f"{environment}/{facts.set_id}/")
                      if key not in plan.keep_offsite_keys and key not in taken]
    return found


def apply_retention(plan: RetentionPlan, store_url: str, storage, environment: str) -> list[str]:
    """Remove expired artifacts (offsite, then locally, then in the catalog), then the sets with
    nothing left; returns the ids of the sets removed whole."""
    now = utcnow()
    for artifact in plan.remove:
        if storage is not None and artifact.offsite_key and artifact.offsite_key not in plan.keep_offsite_keys:
            storage.delete(artifact.offsite_key)
        if artifact.path is not None:
            artifact.path.unlink(missing_ok=True)
        with session_for(store_url) as session:
            row = session.get(BackupArtifact, artifact.artifact_id)
            row.removed_at = now
            session.add(row)
            session.commit()
    removed = []
    for facts in plan.expire_sets:
        if storage is not None:
            for key in storage.list_keys(f"{environment}/{facts.set_id}/"):
                if key not in plan.keep_offsite_keys:
                    storage.delete(key)
        if facts.set_dir is not None and facts.set_dir.exists():
            doomed = facts.set_dir.with_name(f".{facts.set_dir.name}.deleting")
            facts.set_dir.rename(doomed)  # the set vanishes at once; the bytes go after
            shutil.rmtree(doomed)
        with session_for(store_url) as session:
            backup_set = session.exec(select(BackupSet).where(BackupSet.set_id == facts.set_id)).one()
            backup_set.status = "expired"
            session.add(backup_set)
            session.commit()
        removed.append(facts.set_id)
    return removed
