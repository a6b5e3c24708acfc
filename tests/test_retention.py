"""Retention rules at their edges (pure), and pruning end to end with the catalog and S3."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlmodel import select

from tasks.backup.retention import SetFacts, plan_retention

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def git_set(set_id: str, age_days: float, verified: bool = False, key: str | None = None) -> SetFacts:
    return SetFacts(set_id, "daily", NOW - timedelta(days=age_days), verified, None,
                    (("git:alpha", "git_bundle", key or f"env/{set_id}/git/alpha.bundle"),))


def test_25_days_kept_35_days_removed_under_a_30_day_policy():
    plan = plan_retention([git_set("a", 35), git_set("b", 25), git_set("c", 1, verified=True)], NOW, {})
    assert [s.set_id for s in plan.expire] == ["a"]


def test_the_boundary_is_inclusive():
    plan = plan_retention([git_set("a", 30), git_set("b", 29.999), git_set("c", 0, verified=True)], NOW, {})
    assert [s.set_id for s in plan.expire] == ["a"]


def test_order_is_by_time_not_by_name():
    # "zzz" sorts last by name but is the oldest; "aaa" is the newest and verified
    plan = plan_retention([git_set("aaa", 1, verified=True), git_set("mmm", 40), git_set("zzz", 50)], NOW, {})
    assert [s.set_id for s in plan.expire] == ["zzz", "mmm"]


def test_newest_verified_set_of_a_target_is_never_removed():
    plan = plan_retention([git_set("old-verified", 100, verified=True), git_set("newer-unverified", 50)], NOW, {})
    assert [s.set_id for s in plan.expire] == ["newer-unverified"]
    assert plan.keep_protected == [("old-verified", "newest verified set of git:alpha")]


def test_a_set_expires_only_when_all_its_classes_have():
    mixed = SetFacts("m", "daily", NOW - timedelta(days=40), False, None,
                     (("git:alpha", "git_bundle", None), ("db:platform", "pg_dump", None)))
    assert plan_retention([mixed, git_set("v", 0, verified=True)], NOW, {}).expire == []
    assert [s.set_id for s in plan_retention([mixed, git_set("v", 0, verified=True)], NOW,
                                             {"daily:pg_dump": 35}).expire] == ["m"]


def test_offsite_objects_reused_by_surviving_sets_are_kept():
    old = git_set("old", 40, key="env/old/git/alpha.bundle")
    reuser = git_set("new", 1, verified=True, key="env/old/git/alpha.bundle")
    plan = plan_retention([old, reuser], NOW, {})
    assert [s.set_id for s in plan.expire] == ["old"]
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
