"""daily-backup: the runbooks' daily backup (000 "Backup Procedures", "Experiment Data Backup";
003 "Daily Backup"; 004 "Backup & Recovery"), made restorable and provable.

Checklist, for every configured target, into one backup set:
1. PostgreSQL: snapshot-consistent `pg_dump` (custom format, or parallel directory format where
   it pays), per-table row counts, active-experiments CSV.
   SQLite: an online backup copy.
2. Git: a bundle of all refs per repository; unchanged since its last verified backup: reused
   (offsite too, when the offsite store configured now holds exactly its bytes; else copied again).
3. Configuration files, and the last day's logs: tar.gz archives.
Then: RECOVERY.md, the manifest (with RECOVERY.md's SHA-256) and its copy, the set renamed
complete, the catalog, the offsite copies verified by size and SHA-256; earlier sets the offsite
store does not hold whole (a copy cut short, another bucket since) copied again; retention; last,
verify-backups as a subflow (the new set, and every kept set not read back for a week). One target failing fails that target; the others complete.
Report: a summary artifact with every artifact, size, reuse and offsite key.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.verify_backups import verify_backups
from tasks.backup import (
    archive_files_task, backup_database_task, backup_repository_task, backup_task_runner, export_audit_task,
)
from tasks.backup.catalog import fail_set, last_verified, open_set
from tasks.backup.encryption import KeyUnavailable, load_key
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.publish import complete_offsite_copies, publish_set
from tasks.backup.report import publish_backup_report, publish_retention_dry_run
from tasks.backup.retention import apply_retention, catalog_facts, plan_retention
from tasks.backup.sets import new_set_id, staging_dir, sweep_abandoned
from tasks.capacity.sizes import record_sizes_task
from tasks.crash_points import crash_point
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import lock_for, target_lock, writer_lock
from tasks.reporting import final_state, publish_summary
from tradeops.clock import utcnow
from tradeops.store.records import current_flow_run_id


@flow(name="daily-backup", task_runner=backup_task_runner(), **FAILURE_HOOKS)
def daily_backup(environment: str = "default", dry_run: bool = False) -> State:
    """Back up every target of `environment` into one set, locally and offsite, then apply
    retention. `dry_run`: back up nothing, delete nothing, list what retention would remove."""
    env = load_environment(environment)
    return publish_retention_dry_run(env, "daily") if dry_run else run_backup_set(env, kind="daily")


def run_backup_set(env: LoadedEnvironment, kind: str) -> State:
    """One backup run per environment at a time (the sweep of abandoned staging must never take
    the folder of a run that is still writing); then verify-backups, as a subflow run of its own:
    the new set is proven minutes after it is made, and every kept set at least weekly."""
    with target_lock(lock_for("backup", env.name, "run", env.store_url), f"the backups of {env.name}"):
        state = _run_backup_set(env, kind)
    record_sizes_task(env, f"{kind}-backup")  # the capacity report's history (issue 19)
    verification = verify_backups(environment=env.name, return_state=True)
    get_run_logger().log(logging.INFO if verification.is_completed() else logging.ERROR,
                         "verify-backups after this backup: %s%s", verification.name,
                         f" ({verification.message})" if verification.message else "")
    return state


def _run_backup_set(env: LoadedEnvironment, kind: str) -> State:
    logger = get_run_logger()
    unusable_key = encryption_key_problem(env.block.backup_encryption_key_block)
    if unusable_key:  # every artifact would fail sealing: say why once, before anything is written
        result = {"set_id": None, "failures": {"encryption": unusable_key}, "artifacts": []}
        return final_state(publish_summary(f"{kind}-backup", env.name, env.store_url,
                                           f"# {kind} backup\n\nNothing was backed up: {unusable_key}", result,
                                           unusable_key), unusable_key)
    now = utcnow().replace(microsecond=0)
    set_id = new_set_id(kind, now, current_flow_run_id())
    root = env.block.output_dir("backups", env.name)
    staging, final = staging_dir(root, set_id), root / set_id
    open_set(env.store_url, set_id, env.name, kind)
    swept = sweep_abandoned(root, env.store_url, env.name, set_id)
    if swept:
        logger.warning("removed staging folders of abandoned runs: %s", ", ".join(swept))
    staging.mkdir(parents=True, mode=0o700)  # dumps hold trading data: owner only
    crash_point("backup:before-first-artifact")

    jobs, failures = submit_target_backups(env, staging, incremental=(kind == "daily"))
    progress = create_progress_artifact(0.0, key=f"{kind}-backup-progress", description=f"{set_id}: targets done")
    entries: list[ArtifactEntry] = []
    for done, (target, future) in enumerate(jobs.items(), start=1):
        try:
            entries += future.result()
        except Exception as exc:  # noqa: BLE001 - one target's failure is reported, the rest go on
            failures[target] = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            logger.error("%s: %s", target, failures[target])
        update_progress_artifact(progress, 100.0 * done / max(len(jobs), 1))

    if not entries:
        shutil.rmtree(staging, ignore_errors=True)
        fail_set(env.store_url, set_id)
        reason = "; ".join(f"{t}: {r}" for t, r in failures.items()) or "no targets are configured"
        result = {"set_id": set_id, "failures": failures, "artifacts": []}
        return final_state(publish_summary(f"{kind}-backup", env.name, env.store_url,
                                           f"# {kind} backup {set_id}\n\nNothing was backed up: {reason}", result,
                                           reason), reason)

    storage = env.block.offsite()
    manifest, offsite_failures = publish_set(env, kind, set_id, now, staging, final, entries)
    failures.update({f"offsite {k}": v for k, v in offsite_failures.items()})
    if storage is not None and not offsite_failures:
        completed, earlier_failures = complete_offsite_copies(env, storage, set_id)
        failures.update({f"offsite {k}": v for k, v in earlier_failures.items()})
        if completed:
            logger.warning("copied %d earlier set(s) whole to %s (cut short, or made before it was the offsite "
                           "store): %s", len(completed), storage.describe(), ", ".join(completed))
    expired: list[str] = []
    removed: list[str] = []
    if not failures:  # a failed run never prunes older good sets
        plan = plan_retention(catalog_facts(env.store_url, env.name), now, env.block.backup_retention_days)
        expired = apply_retention(plan, env.store_url, storage, env.name)
        removed = [f"{a.set_id} {a.target} {a.kind}" for a in plan.remove]
        if plan.remove:
            logger.info("retention removed %d expired artifact(s), %d set(s) whole: %s", len(plan.remove),
                        len(expired), ", ".join(f"{a.set_id} {a.target} {a.kind}" for a in plan.remove))
    return publish_backup_report(env, kind, manifest, final, failures, storage, expired, removed)


def encryption_key_problem(key_block: str | None) -> str | None:
    """Why the configured backup key cannot be used (its Secret block is gone or holds no 256-bit
    key, e.g. edited in the UI since the last apply), or None."""
    if not key_block:
        return None
    try:
        load_key(key_block)
    except KeyUnavailable as exc:
        return f"backups.encryption_key_block: {exc}"
    return None


def submit_target_backups(env: LoadedEnvironment, staging: Path, incremental: bool) -> tuple[dict, dict[str, str]]:
    """Submit one task per target (they run concurrently, each holding its target's lock);
    targets that cannot even start fail here."""
    failures: dict[str, str] = {}
    work: dict[str, tuple] = {}
    for db in env.block.databases():
        work[f"db:{db.target}"] = (backup_database_task, db.url.get_secret_value(), staging, db.dump_jobs)
    for repo_set in env.block.git_sets():
        if repo_set.root and not Path(repo_set.root).is_dir():
            failures[f"git:{repo_set.target}"] = f"repository folder {repo_set.root} does not exist"
        for repo in repo_set.repositories():
            target = f"git:{repo.name}"
            previous = last_verified(env.store_url, env.name, target, "git_bundle") if incremental else None
            work[target] = (backup_repository_task, repo, staging, previous)
    for files in env.block.config_sets():
        work[f"config:{files.target}"] = (archive_files_task, files.paths, staging)
    for logs in env.block.log_directories():
        work[f"logs:{logs.target}"] = (archive_files_task, [logs.path], staging, incremental, logs.pattern)
    locks = {target: writer_lock(env.name, target, env.store_url) for target in work}
    key_block = env.block.backup_encryption_key_block
    jobs = {target: task.submit(target, *args, lock=locks[target], key_block=key_block)
            for target, (task, *args) in work.items()}
    if not incremental:  # the weekly full set also carries the audit trail (runbook 000)
        jobs["audit:trail"] = export_audit_task.submit("audit:trail", env.store_url, staging, key_block=key_block)
    return jobs, failures
