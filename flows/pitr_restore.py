"""pitr-restore: a PostgreSQL database as it was at a point in time (runbook 004 "Point-in-Time
Recovery": restore_to_time.sh "2025-06-26 14:30:00"), into a scratch cluster. On demand:

    tradeops run pitr-restore --set target_time=2026-12-05T14:30:00Z [--set database=platform]
    tradeops run pitr-restore --set target_time=latest --set keep_running=true

Checklist:
1. Access: `backup.restore` (system administrators), checked and audited before anything.
2. The newest base backup that stopped at or before the target time; its files fetched offsite
   and checked (SHA-256 each, then pg_verifybackup against its manifest).
3. A scratch cluster on a free port and a private socket, archive_mode off, replaying WAL that
   this run fetches offsite and checks against the checksum in its name, up to the target time
   (`inclusive`: a transaction committed exactly at that time is kept) or to the end (latest),
   then promoted.
4. Proven: the probe query answers; with a time and the database's freshness table, every row
   dated up to `rpo_window_seconds` before the target time is there with the source's content.
5. Left running for you (`keep_running`: port, socket and data folder in the report) or stopped
   and removed. Audited with who ran it, the backup, the target time and the outcome.
A target time without a zone is UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.environment import LoadedEnvironment, load_environment
from tasks.pitr.prove import restore_and_prove
from tasks.pitr.report import pitr_report
from tasks.pitr.restore import PitrError, PitrResult
from tasks.pitr.rpo import RPO_WINDOW
from tasks.reporting import final_state, publish_summary, report_denial
from tradeops.store.records import append_audit


@flow(name="pitr-restore", **FAILURE_HOOKS)
def pitr_restore(environment: str = "default", target_time: datetime | Literal["latest"] = "latest",
                 database: str | None = None, inclusive: bool = True, keep_running: bool = False,
                 directory: str | None = None, rpo_window_seconds: float = RPO_WINDOW.total_seconds(),
                 timeout_seconds: float = 1800) -> State:
    """Restore `database` (default: the only one with wal_archive) to `target_time` or latest."""
    env = load_environment(environment)
    moment = None if target_time == "latest" else _utc(target_time)
    try:
        actor = require_permission(env, permission_for("pitr-restore"), "pitr_restore")
    except AccessDenied as exc:
        return report_denial("pitr-restore", env.name, env.store_url, f"Point-in-time restore ({env.name})", str(exc),
                             reports_dir=str(env.block.output_dir("reports")))
    try:
        db = _database(env, database)
    except PitrError as exc:
        return _report(env, PitrResult(database or "", target_time if moment is None else moment.isoformat(),
                                       inclusive, problems=[str(exc)]), None)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(directory) if directory else env.block.output_dir("pitr", "restores") / f"{db.target}-{stamp}"
    artifact = create_progress_artifact(0.0, key="pitr-restore-progress",
                                        description=f"point-in-time restore of db:{db.target}")
    result, rpo = restore_and_prove(env.block.offsite(), env.name, db, moment, folder, inclusive, keep_running,
                                    timedelta(seconds=rpo_window_seconds), timeout_seconds,
                                    progress=lambda percent: update_progress_artifact(artifact, percent))
    update_progress_artifact(artifact, 100.0)
    append_audit(env.store_url, "pitr_restore", actor.user, success=result.passed,
                 details={"target": f"db:{db.target}", "target_time": result.target_time, "inclusive": inclusive,
                          "backup_id": result.backup_id, "recovered_to": result.recovered_to,
                          "left_running": result.running, "data_dir": result.data_dir if result.running else None,
                          "problems": result.problems})
    return _report(env, result, rpo)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _database(env: LoadedEnvironment, name: str | None):
    archiving = [db for db in env.block.databases() if db.wal_archive]
    if env.block.offsite() is None:
        raise PitrError("no [offsite] storage is configured: the WAL archive and base backups live there")
    chosen = [db for db in archiving if name is None or db.target == name]
    if name is None and len(archiving) > 1:
        raise PitrError(f"several databases archive WAL ({', '.join(d.target for d in archiving)}): name one "
                        "with --set database=NAME")
    if not chosen:
        raise PitrError(f"no database {'named ' + repr(name) + ' ' if name else ''}has wal_archive = true")
    return chosen[0]


def _report(env: LoadedEnvironment, result: PitrResult, rpo) -> State:
    failure = "; ".join(result.problems) or None
    payload = {**result.as_dict(), "rpo": rpo.as_dict() if rpo is not None else None}
    return final_state(publish_summary("pitr-restore", env.name, env.store_url, pitr_report(env.name, result, rpo),
                                       payload, failure, reports_dir=str(env.block.output_dir("reports"))), failure)
