"""log-archival: daily log rotation and archival (runbook 001 "Log Archival Procedures", 003 "Log
Rotation", 004 "Log Rotation Verification"). Every day at 02:30 UTC.

For every log directory:
1. Rotate each live file over 10 MB: rename it aside, create an empty one in its place, run the
   reopen command if one is configured. Never copy-and-truncate: no line may be lost.
2. Archive every rotated file (ours, and dated files the platform rotated itself) once no
   process holds it open: gzip, compressed on every core, verified before the original is
   removed, with its time ranges in the ops store index (`tradeops logs retrieve` reads it).
3. Copy new archives offsite (checked copy; Object Lock until the offsite retention ends when
   the bucket has it).
4. Retention: local archives older than 30 days are deleted once their offsite copy exists;
   offsite copies older than a year are deleted.
Report: what was rotated, archived (ratio, throughput), copied, deleted, and what waits for a writer.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from blocks import LogDirectory, OffsiteStorage
from tasks.backup import publish_offsite_task_for
from tasks.environment import LoadedEnvironment, load_environment
from tasks.logs import archive_rotated_file_task, rotate_live_file_task
from tasks.logs.archive import archive_root
from tasks.logs.index import archives, members_of, update_archive, utcnow
from tasks.logs.report import publish_archival_report
from tasks.logs.retention import local_copies_to_delete, offsite_copies_to_delete
from tasks.logs.rotation import live_files_to_rotate, rotated_files_ready, run_reopen_command
from tasks.logs.writers import wait_for_writers
from tasks.access import current_actor
from tradeops.store.records import append_audit

@flow(name="log-archival", **FAILURE_HOOKS)
def log_archival(environment: str = "default") -> State:
    env = load_environment(environment)
    storage = env.block.offsite()
    now = datetime.now(timezone.utc)
    directories = env.block.log_directories()
    plans = [rotate_directory(logs, now) for logs in directories]
    archive_planned(env, plans)
    for plan in plans:
        if storage is not None:
            copy_offsite(env, plan, storage)
        apply_retention(env, plan, storage, now)
        append_audit(env.store_url, "log_archival", current_actor(env).user, success=not plan["failures"],
                     details={"target": f"logs:{plan['target']}", "archived": [a["file"] for a in plan["archived"]],
                              "deleted_local": plan["deleted_local"], "deleted_offsite": plan["deleted_offsite"],
                              "failures": plan["failures"]})
    return publish_archival_report(env, plans)


def rotate_directory(logs: LogDirectory, now: datetime) -> dict:
    """Step 1 for one directory: rotate what is over the size limit; list what is ready to archive."""
    plan = {"target": logs.target, "block": logs, "rotated": [], "reopen": None, "ready": [], "archived": [],
            "waiting": [], "uploaded": [], "deleted_local": [], "deleted_offsite": [], "failures": []}
    folder = Path(logs.path)
    if not folder.is_dir():
        plan["failures"].append(f"log folder {folder} does not exist")
        return plan
    just_rotated = set()
    for path in live_files_to_rotate(folder, logs.pattern, logs.rotate_bytes):
        try:
            rotated = rotate_live_file_task(path, now)
        except OSError as exc:
            plan["failures"].append(f"{path.name}: rotation failed: {exc}")
            continue
        just_rotated.add(rotated)
        plan["rotated"].append({"file": path.name, "rotated_to": rotated.name, "bytes": rotated.stat().st_size})
    if just_rotated and logs.reopen_command:
        plan["reopen"] = run_reopen_command(logs.reopen_command)
    plan["ready"] = [(p, p in just_rotated) for p in rotated_files_ready(folder, logs.pattern, now, just_rotated)]
    return plan


def archive_planned(env: LoadedEnvironment, plans: list[dict]) -> None:
    """Step 2: archive every ready file whose writers let go; progress shows in the UI."""
    logger = get_run_logger()
    total = sum(len(plan["ready"]) for plan in plans)
    progress = create_progress_artifact(0.0, key="log-archival-progress", description="rotated files archived")
    done = 0
    for plan in plans:
        logs: LogDirectory = plan["block"]
        root = archive_root(env.block.data_dir, logs.archive_dir)
        for path, ours in plan["ready"]:
            holders = wait_for_writers(path, logs.writer_grace_seconds if ours else 0)
            if holders:
                plan["waiting"].append({"file": path.name, "pids": holders})
                logger.warning("%s is still open by pid %s: left as it is, archived on a later run",
                               path, ", ".join(map(str, holders)))
            else:
                try:
                    plan["archived"].append(archive_rotated_file_task(env.store_url, env.name, logs.target, path, root))
                except Exception as exc:  # noqa: BLE001 - the file is kept; the run names it and goes on
                    plan["failures"].append(f"{path.name}: not archived, original kept: {type(exc).__name__}: {exc}")
            done += 1
            update_progress_artifact(progress, 100.0 * done / max(total, 1))


def offsite_key(archive_name: str) -> str:
    return f"logs/{archive_name}"


def copy_offsite(env: LoadedEnvironment, plan: dict, storage: OffsiteStorage) -> None:
    """Step 3: every archive of this directory without an offsite copy gets one (checked)."""
    logs: LogDirectory = plan["block"]
    root = archive_root(env.block.data_dir, logs.archive_dir)
    upload = publish_offsite_task_for(storage)
    for row in archives(env.store_url, env.name, logs.target):
        if row.offsite_key is not None or row.local_deleted_at is not None:
            continue
        key = offsite_key(row.archive_name)
        retain_until = (row.last_at or row.archived_at) + timedelta(days=logs.offsite_retention_days)
        try:
            upload(storage, root / row.archive_name, key, row.archive_sha256, row.archive_bytes, retain_until)
            storage.write_bytes(f"{key}.index.json", json.dumps(
                {"archive": row.archive_name, "type": row.log_type, "source": row.source_name,
                 "original_sha256": row.original_sha256, "members": [vars(m) for m in members_of(row)]}).encode())
        except Exception as exc:  # noqa: BLE001 - the local copy stays and is not aged out without this
            plan["failures"].append(f"{row.archive_name}: offsite copy failed, local copy kept: {exc}")
            continue
        update_archive(env.store_url, row.id, offsite_key=key)
        plan["uploaded"].append(row.archive_name)


def apply_retention(env: LoadedEnvironment, plan: dict, storage: OffsiteStorage | None, now: datetime) -> None:
    """Step 4: local copies past 30 days (once offsite), offsite copies past a year."""
    logs: LogDirectory = plan["block"]
    root = archive_root(env.block.data_dir, logs.archive_dir)
    rows = archives(env.store_url, env.name, logs.target)
    for row in local_copies_to_delete(rows, now, logs.local_retention_days, logs.offsite_retention_days,
                                      storage is not None):
        (root / row.archive_name).unlink(missing_ok=True)
        update_archive(env.store_url, row.id, local_deleted_at=utcnow())
        plan["deleted_local"].append(row.archive_name)
    if storage is None:
        return
    for row in offsite_copies_to_delete(rows, now, logs.offsite_retention_days):
        try:
            storage.delete(row.offsite_key)
            storage.delete(f"{row.offsite_key}.index.json")
        except Exception as exc:  # noqa: BLE001 - e.g. Object Lock still holds it: say so, retry tomorrow
            plan["failures"].append(f"{row.offsite_key}: offsite copy not deleted: {exc}")
            continue
        update_archive(env.store_url, row.id, offsite_deleted_at=utcnow())
        plan["deleted_offsite"].append(row.archive_name)
