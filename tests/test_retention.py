"""Retention rules at their edges (pure), and pruning end to end with the catalog and S3."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import select

from tasks.backup.retention import ArtifactFacts, SetFacts, plan_retention

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def artifact(set_id: str, target: str, kind: str, key: str | None = None) -> ArtifactFacts:
    return ArtifactFacts(set_id, target, kind, None, key)


def git_set(set_id: str, age_days: float, verified: bool = False, key: str | None = None) -> SetFacts:
    return SetFacts(set_id, "daily", NOW - timedelta(days=age_days), verified, None,
                    (artifact(set_id, "git:alpha", "git_bundle", key or f"env/{set_id}/git/alpha.bundle"),))


def expired(plan) -> list[str]:
    return [s.set_id for s in plan.expire_sets]


def test_25_days_kept_35_days_removed_under_a_30_day_policy():
    plan = plan_retention([git_set("a", 35), git_set("b", 25), git_set("c", 1, verified=True)], NOW, {})
    assert expired(plan) == ["a"] and [a.set_id for a in plan.remove] == ["a"]


def test_the_boundary_is_inclusive():
    plan = plan_retention([git_set("a", 30), git_set("b", 29.999), git_set("c", 0, verified=True)], NOW, {})
    assert expired(plan) == ["a"]


def test_order_is_by_time_not_by_name():
    # "zzz" sorts last by name but is the oldest; "aaa" is the newest and verified
    plan = plan_retention([git_set("aaa", 1, verified=True), git_set("mmm", 40), git_set("zzz", 50)], NOW, {})
    assert expired(plan) == ["zzz", "mmm"]


def test_newest_verified_set_of_a_target_is_never_removed():
    plan = plan_retention([git_set("old-verified", 100, verified=True), git_set("newer-unverified", 50)], NOW, {})
    assert expired(plan) == ["newer-unverified"]
    assert [(a.set_id, why) for a, why in plan.keep_protected] == [("old-verified", "newest verified set of git:alpha")]


def test_each_class_expires_on_its_own_and_the_set_goes_with_its_last_artifact():
    mixed = SetFacts("m", "daily", NOW - timedelta(days=40), False, None,
                     (artifact("m", "git:alpha", "git_bundle"), artifact("m", "db:platform", "pg_dump")))
    plan = plan_retention([mixed, git_set("v", 0, verified=True)], NOW, {})
    assert [(a.target, a.kind) for a in plan.remove] == [("git:alpha", "git_bundle")]  # git: 30 days
    assert expired(plan) == []  # the dump (90 days) keeps the set
    plan = plan_retention([mixed, git_set("v", 0, verified=True)], NOW, {"daily:pg_dump": 35})
    assert len(plan.remove) == 2 and expired(plan) == ["m"]


def test_a_weekly_set_loses_its_dumps_after_12_weeks_and_keeps_its_audit_trail_7_years():
    def weekly(age_days: float) -> SetFacts:
        return SetFacts("w", "weekly", NOW - timedelta(days=age_days), False, None,
                        (artifact("w", "db:platform", "pg_dump"), artifact("w", "git:alpha", "git_bundle"),
                         artifact("w", "audit:trail", "audit_log")))

    assert plan_retention([weekly(83)], NOW, {}).remove == []
    plan = plan_retention([weekly(84)], NOW, {})
    assert sorted(a.kind for a in plan.remove) == ["git_bundle", "pg_dump"] and expired(plan) == []
    plan = plan_retention([weekly(7 * 365)], NOW, {})
    assert len(plan.remove) == 3 and expired(plan) == ["w"]


def test_an_emergency_set_never_protects_a_target_and_goes_after_90_days():
    emergency = SetFacts("e", "emergency", NOW - timedelta(days=90), True, None,
                         (artifact("e", "db:platform", "pg_dump"),))
    plan = plan_retention([emergency], NOW, {})
    assert expired(plan) == ["e"] and plan.keep_protected == []


def test_offsite_objects_reused_by_surviving_sets_are_kept():
    old = git_set("old", 40, key="env/old/git/alpha.bundle")
    reuser = git_set("new", 1, verified=True, key="env/old/git/alpha.bundle")
    plan = plan_retention([old, reuser], NOW, {})
    assert expired(plan) == ["old"]
    assert "env/old/git/alpha.bundle" in plan.keep_offsite_keys


def test_pruning_end_to_end(backup_env):
    from flows.daily_backup import daily_backup
    from flows.verify_backups import verify_backups
    from tradeops.store import BackupSet, session_for

    def run(flow, **kw):
        state = flow(environment=backup_env.name, return_state=True, **kw)
        assert state.is_completed(), state.message
        return state.result()

    first = run(daily_backup)
    run(verify_backups)
    second = run(daily_backup)
    run(verify_backups)
    with session_for(backup_env.store) as session:
        old = session.exec(select(BackupSet).where(BackupSet.set_id == first["set_id"])).one()
        old.created_at = datetime.now(timezone.utc) - timedelta(days=100)
        session.add(old)
        session.commit()

    plan = run(daily_backup, dry_run=True)
    assert plan["would_expire"] == [first["set_id"]]
    assert Path(first["set_dir"]).is_dir()  # a dry run deletes nothing
    doomed = {(d["where"], d["location"]) for d in plan["would_delete"]}
    first_dump = next(a for a in first["artifacts"] if a["kind"] == "pg_dump")
    assert ("offsite", first_dump["offsite_key"]) in doomed  # named by its key and its path
    assert ("local", str(Path(first["set_dir"]) / "db" / "platform.dump")) in doomed
    assert ("local", first["set_dir"]) in doomed
    reused = next(a["offsite_key"] for a in first["artifacts"] if a["target"] == "git:momentum_alpha")
    assert ("offsite", reused) not in doomed  # the second set still points at it

    third = run(daily_backup)
    assert third["expired_sets"] == [first["set_id"]]
    assert not Path(first["set_dir"]).exists() and Path(second["set_dir"]).is_dir()
    keys = {o["Key"] for o in backup_env.s3.list_objects_v2(Bucket=backup_env.bucket)["Contents"]}
    dump_key = next(a["offsite_key"] for a in first["artifacts"] if a["kind"] == "pg_dump")
    bundle_key = next(a["offsite_key"] for a in first["artifacts"] if a["target"] == "git:momentum_alpha")
    assert f"tradeops/{dump_key}" not in keys
    assert f"tradeops/{bundle_key}" in keys  # still the offsite copy of the reused bundle
    with session_for(backup_env.store) as session:
        assert session.exec(select(BackupSet).where(BackupSet.set_id == first["set_id"])).one().status == "expired"
    run(verify_backups)
