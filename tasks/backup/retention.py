"""Retention: which backup sets have outlived their class's policy, and removing them.

A set expires when every artifact in it is older than its class's retention (by creation time,
never by name). Never removed: the newest verified set of any target, and offsite objects that a
surviving set still points at (a reused git bundle).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import select

from tasks.backup.catalog import retention_days
from tradeops.store import BackupArtifact, BackupSet, session_for


@dataclass(frozen=True)
class SetFacts:
    set_id: str
    kind: str
    created_at: datetime
    verified: bool
    set_dir: Path | None
    artifacts: tuple[tuple[str, str, str | None], ...]  # (target, artifact kind, offsite key)


@dataclass
class RetentionPlan:
    expire: list[SetFacts] = field(default_factory=list)
    keep_protected: list[tuple[str, str]] = field(default_factory=list)  # (set id, why)
    keep_offsite_keys: set[str] = field(default_factory=set)


def plan_retention(sets: list[SetFacts], now: datetime, policy: dict[str, int]) -> RetentionPlan:
    """Pure: decide from catalog facts alone, so the rules are testable at their edges."""
    plan = RetentionPlan()
    newest_verified: dict[str, SetFacts] = {}
    for facts in sorted(sets, key=lambda s: s.created_at):
        if facts.verified:
            for target, _, _ in facts.artifacts:
                newest_verified[target] = facts
    protected = {s.set_id: f"newest verified set of {t}" for t, s in sorted(newest_verified.items())}
    for facts in sorted(sets, key=lambda s: s.created_at):
        expired = all(now - facts.created_at >= timedelta(days=retention_days(facts.kind, kind, policy))
                      for _, kind, _ in facts.artifacts)
        if not expired:
            continue
        if facts.set_id in protected:
            plan.keep_protected.append((facts.set_id, protected[facts.set_id]))
        else:
            plan.expire.append(facts)
    expiring = {s.set_id for s in plan.expire}
    plan.keep_offsite_keys = {key for s in sets if s.set_id not in expiring for _, _, key in s.artifacts if key}
    return plan


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def catalog_facts(store_url: str, environment: str) -> list[SetFacts]:
    with session_for(store_url) as session:
        sets = session.exec(select(BackupSet).where(BackupSet.environment == environment,
                                                    BackupSet.status == "complete")).all()
        artifacts = session.exec(select(BackupArtifact).where(
            BackupArtifact.set_id.in_([s.set_id for s in sets]))).all()
    by_set: dict[str, list] = {}
    for a in artifacts:
        by_set.setdefault(a.set_id, []).append((a.target, a.kind, a.offsite_key))
    return [SetFacts(s.set_id, s.kind, _utc(s.created_at), s.verified_at is not None,
                     Path(s.manifest_path).parent if s.manifest_path else None, tuple(by_set.get(s.set_id, ())))
            for s in sets]


def apply_retention(plan: RetentionPlan, store_url: str, storage, environment: str) -> list[str]:
    """Remove expired sets offsite, then locally, then mark them expired in the catalog."""
    removed = []
    for facts in plan.expire:
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
