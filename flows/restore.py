"""restore: bring a backup set back into targets you name (runbook 004 "Recovery Procedures",
000 "Emergency Procedures"). On demand: `tradeops run restore --set set_id=...`.

Checklist (the live target is never touched before step 5, and never left empty):
1. The set: by `set_id`, else the newest verified set of `date` (YYYY-MM-DD, UTC), else the
   newest verified set. Its manifest from the local set folder, else offsite (`source`).
2. Plan every destination: a database per PostgreSQL target (`database_names`, default
   `<database>_restored_<set date>`), and a folder (`directory`, default
   `<data_dir>/restores/<set id>`) with `git/<repo>.git`, `files/<target>/`, `db/`. An existing
   non-empty database or folder is refused, and nothing is changed, unless `overwrite=true`.
   The restore is audited as started, with its plan.
3. Fetch every artifact it will use and check its SHA-256, then decrypt it. With `source=auto`
   an artifact whose local copy is missing or corrupt is taken from offsite. Any artifact that
   cannot be had stops the restore here: nothing was touched.
4. With `overwrite`, an emergency backup of what will be replaced.
5. Restore every target into staging (a database and a folder of its own) and check it as the
   DR drill does. Only when every target passed is each put in place: a database by renaming in
   one transaction, folders by rename. Audited with the outcome.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date as Date
from pathlib import Path

import psycopg2
from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.backup.emergency import ToReplace, take_emergency_set
from tasks.backup.postgres import BackupError
from tasks.crash_points import crash_point
from tasks.databases import is_sqlite
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import TargetBusy, lock_for, target_lock
from tasks.reporting import report_denial
from tasks.restore import fetch_target_task, restore_fetched_task
from tasks.restore.fetch import RestoreError
from tasks.restore.plan import RestorePlan, RestoreRequest, TargetPlan, plan_restore
from tasks.restore.postgres import create_database, drop_database
from tasks.restore.publish import (
    put_database_in_place, put_path_in_place, replaced_database_name, staging_database_name, staging_folder,
    sweep_restore_leftovers,
)
from tasks.restore.report import RestoreReport, publish_restore_report
from tasks.restore.restorers import Destination
from tasks.restore.targets import FetchedTarget, TargetOutcome
from tradeops.store.records import append_audit, current_flow_run_id


@flow(name="restore", **FAILURE_HOOKS)
def restore(environment: str = "default", set_id: str | None = None, date: Date | None = None,
            source: str = "auto", targets: list[str] | None = None, database_names: dict[str, str] | None = None,
            directory: str | None = None, overwrite: bool = False) -> State:
    """Restore a backup set. `source`: auto (local folder, falling back to offsite per artifact),
    local, offsite. `targets`: e.g. ["db:platform", "git:momentum_alpha"] (default: all)."""
    env = load_environment(environment)
    try:
        actor = require_permission(env, permission_for("restore"), "backup_restore")
    except AccessDenied as exc:
        return report_denial("restore", env.name, env.store_url, f"Restore ({env.name})", str(exc),
                             reports_dir=str(env.block.output_dir("reports")))
    try:
        with target_lock(lock_for("restore", env.name, "run", env.store_url), f"the restores of {env.name}"):
            return run_restore(env, actor.user, RestoreRequest(set_id, date, source, targets, database_names,
                                                               directory, overwrite))
    except TargetBusy as exc:
        return publish_restore_report(env, RestoreReport(failure=str(exc)))


def run_restore(env: LoadedEnvironment, user: str, request: RestoreRequest) -> State:
    logger = get_run_logger()
    run = (current_flow_run_id() or uuid.uuid4().hex)[:8]
    servers = [db.url.get_secret_value() for db in env.block.databases() if not is_sqlite(db.url.get_secret_value())]
    report = RestoreReport()
    try:
        report.swept = sweep_restore_leftovers(env.name, servers, *restore_folders(env, request.directory))
        plan = plan_restore(env, run, request)
    except RestoreError as exc:
        return publish_restore_report(env, RestoreReport(failure=str(exc)))
    except psycopg2.Error as exc:  # the database server is down: nothing was touched
        return publish_restore_report(env, RestoreReport(failure=f"cannot plan the restore: {_first_line(exc)}"))
    if report.swept:
        logger.warning("removed leftovers of an interrupted restore: %s", ", ".join(report.swept))
    report.plan = plan
    audit = {"environment": env.name, "set_id": plan.set_id, "source": plan.sources.described,
             "destinations": plan.shown(), "overwrite": plan.overwrite, "replacing": plan.replacing()}
    append_audit(env.store_url, "backup_restore_start", user, details=audit)
    staging = staging_folder(plan.root, run)
    staging_dbs: list[tuple[str, str]] = []
    try:
        report.failure = restore_into_place(env, plan, run, staging, staging_dbs, report)
    finally:
        shutil.rmtree(plan.sources.download_dir, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        for server, name in staging_dbs:  # the ones put in place were renamed: nothing to drop
            drop_database(server, name)
    report.fallbacks = plan.sources.fallbacks
    append_audit(env.store_url, "backup_restore", user, success=report.failure is None,
                 details=audit | {"published": report.published, "emergency_backups": report.emergency,
                                  "emergency_set": report.emergency_set,
                                  "fallbacks": report.fallbacks, "error": report.failure})
    return publish_restore_report(env, report)


def restore_folders(env: LoadedEnvironment, directory: str | None) -> tuple[Path, str]:
    """Where this restore's folder lives, and its name there (every one: the default folder)."""
    if directory:
        return Path(directory).parent, Path(directory).name
    return env.block.output_dir("restores"), "*"


def restore_into_place(env: LoadedEnvironment, plan: RestorePlan, run: str, staging: Path,
                       staging_dbs: list[tuple[str, str]], report: RestoreReport) -> str | None:
    """Steps 3 to 5; returns the failure, None when every target is in place."""
    key_block = env.block.backup_encryption_key_block
    plan.sources.download_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # decrypted data: owner only
    fetched: dict[str, FetchedTarget] = {}
    problems = []
    futures = {t.target: fetch_target_task.submit(t.target, t.entries, plan.sources, key_block,
                                                  plan.sources.download_dir) for t in plan.targets}
    for target, future in futures.items():
        try:
            fetched[target] = future.result()
        except Exception as exc:  # noqa: BLE001 - RestoreError names the artifact; S3 down and the like too
            problems.append(str(exc) if str(exc).startswith(target) else f"{target}: {exc}")
    if problems:
        return "; ".join(problems) + "; nothing was restored or changed"

    try:
        take_emergency_backups(env, plan, report)
    except (BackupError, OSError, psycopg2.Error, TargetBusy) as exc:
        return f"emergency backup failed, nothing was changed: {exc}"

    staging.mkdir(parents=True, mode=0o700)
    futures = {}
    for target in plan.targets:
        destination = Destination(staging)
        if target.database is not None:
            name = staging_database_name(env.name, run, target.target)
            create_database(target.database.server_url, name)
            staging_dbs.append((target.database.server_url, name))
            destination = Destination(staging, target.database.url(name), target.database.probe_query)
        futures[target.target] = restore_fetched_task.submit(fetched[target.target], target.entries, destination,
                                                             plan.sources.download_dir)
    outcomes: dict[str, TargetOutcome] = {}
    for target, future in futures.items():
        try:
            outcomes[target] = future.result()
        except Exception as exc:  # noqa: BLE001 - a crashed task: its target failed
            outcomes[target] = TargetOutcome(target, problems=[f"{target}: {type(exc).__name__}: {exc}"])
    report.outcomes = list(outcomes.values())
    failed = [o for o in report.outcomes if not o.passed]
    if failed:
        return "; ".join(p for o in failed for p in o.problems) + "; nothing was put in place"
    crash_point("restore:before-swap")
    for target in plan.targets:
        put_in_place(env, plan, target, run, staging)
        report.published.append(target.target)
    return None


def put_in_place(env: LoadedEnvironment, plan: RestorePlan, target: TargetPlan, run: str, staging: Path) -> None:
    if target.database is not None:
        put_database_in_place(target.database.server_url, staging_database_name(env.name, run, target.target),
                              target.database.name, replaced_database_name(env.name, run, target.target))
    for path in target.paths:
        put_path_in_place(staging / path, plan.root / path, run)


def take_emergency_backups(env: LoadedEnvironment, plan: RestorePlan, report: RestoreReport) -> None:
    """Runbook 000 "Emergency Procedures": keep everything the restore will replace, before any of
    it is replaced, as an emergency set (catalogued, encrypted, offsite, expiring like the others)."""
    replaced = [ToReplace(t.target, t.database.url() if t.database is not None and t.database.tables else None,
                          tuple(plan.root / p for p in t.replaced_paths))
                for t in plan.targets if (t.database is not None and t.database.tables) or t.replaced_paths]
    if not replaced:
        return
    emergency = take_emergency_set(env, replaced)
    report.emergency, report.emergency_set = emergency.files, emergency.set_id
    report.warnings += [f"the emergency set's offsite copy {key}: {why}" for key, why in
                        emergency.offsite_failures.items()]
    for target, path in emergency.files.items():
        get_run_logger().warning("%s: emergency backup in %s (set %s) before overwriting", target, path,
                                 emergency.set_id)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
