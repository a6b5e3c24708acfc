"""base-backup: the base backup point-in-time recovery starts from (issue 20 item 4, runbook 004
"Point-in-Time Recovery"). Daily at 01:30 UTC, before the 02:00 logical backup.

For every database with `wal_archive`:
1. `pg_basebackup` in tar format with the WAL it needs streamed alongside and a manifest with
   SHA-256 per file, into a private folder under `<data_dir>/pitr/`.
2. Offsite: every file checked by size and SHA-256 (retried with backoff), then backup.json, the
   record a restore chooses by: timeline, start and stop LSN, start and stop time.
3. The local folder is removed; the backup is audited.
4. That database's base backups and WAL older than the recovery window (retention class `pitr`)
   expire (tasks/pitr/expire.py); what went is audited. `expire_dry_run` only lists it.
One database failing fails that database; the others go on. A restore to time T can use any
base backup that stopped before T, and needs the WAL archive from that backup on: take one a
day so a restore replays at most a day of WAL.
"""

from __future__ import annotations

import os
import shutil
import time

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from tasks.access import current_actor
from tasks.backup import publish_offsite_task_for
from tasks.backup.catalog import pitr_window_days
from tasks.environment import load_environment
from tasks.locks import target_lock, writer_lock
from tasks.pitr import expire_pitr_task, take_base_backup_task
from tasks.pitr.basebackup import BaseBackupError, publish_base_backup
from tasks.pitr.report import base_backup_report
from tasks.reporting import final_state, publish_summary
from tradeops import clock
from tradeops.store.records import append_audit


@flow(name="base-backup", **FAILURE_HOOKS)
def base_backup(environment: str = "default", targets: list[str] | None = None, expire_dry_run: bool = False) -> State:
    """`targets`: database names (default: every database with wal_archive = true);
    `expire_dry_run`: list what expiry would remove, remove nothing."""
    env = load_environment(environment)
    storage = env.block.offsite()
    databases = [db for db in env.block.databases() if db.wal_archive and (not targets or db.target in targets)]
    failures: dict[str, str] = {}
    if storage is None:
        failures["offsite"] = "no [offsite] storage configured: base backups go offsite"
        databases = []
    unknown = sorted(set(targets or ()) - {db.target for db in databases})
    for name in unknown:
        failures[f"db:{name}"] = "no database of that name with wal_archive = true"
    done, expiries = [], []
    window_days = pitr_window_days(env.block.backup_retention_days)
    upload = publish_offsite_task_for(storage) if storage else None
    actor = current_actor(env)
    artifact = create_progress_artifact(0.0, key="base-backup-progress", description="base backups taken")
    for number, db in enumerate(databases, 1):
        folder = env.block.output_dir("pitr", "base") / f".{db.target}-{os.getpid()}-{time.time_ns()}.partial"
        started = time.monotonic()
        try:
            # the writer lease every run that dumps the database holds: never beside its maintenance
            with target_lock(writer_lock(env.name, f"db:{db.target}", env.store_url), f"db:{db.target}"):
                backup = take_base_backup_task(db.url.get_secret_value(), env.name, db.target, folder)
            backup = publish_base_backup(storage, backup, folder, upload)
        except Exception as exc:  # noqa: BLE001 - one database failing fails that database only
            reason = str(exc) if isinstance(exc, BaseBackupError) else f"{type(exc).__name__}: {exc}"
            failures[f"db:{db.target}"] = reason
            append_audit(env.store_url, "pitr_base_backup", actor.user, success=False,
                         details={"target": f"db:{db.target}", "error": reason})
            continue
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            update_progress_artifact(artifact, 100.0 * number / len(databases))
        done.append((backup, time.monotonic() - started))
        append_audit(env.store_url, "pitr_base_backup", actor.user,
                     details={"target": f"db:{db.target}", "backup_id": backup.backup_id,
                              "start_lsn": backup.start_lsn, "stop_lsn": backup.stop_lsn,
                              "stop_time": backup.stop_time, "offsite": [f.key for f in backup.files]})
        try:
            expiry = expire_pitr_task(storage, env.name, db.target, clock.utcnow(), window_days, expire_dry_run)
        except Exception as exc:  # noqa: BLE001 - the new backup stands; the expiry is retried next run
            failures[f"db:{db.target}"] = f"expiry of old base backups and WAL failed: {type(exc).__name__}: {exc}"
            continue
        expiries.append(expiry)
        if (expiry.expired or expiry.wal_keys) and not expire_dry_run:
            append_audit(env.store_url, "pitr_expire", actor.user,
                         details={"target": f"db:{db.target}", "window_days": window_days, **expiry.as_dict()})
    markdown, result, failure = base_backup_report(env.name, done, failures, expiries, expire_dry_run)
    return final_state(publish_summary("base-backup", env.name, env.store_url, markdown, result, failure,
                                       reports_dir=str(env.block.output_dir("reports"))), failure)
