"""wal-archive: WAL from the spool to offsite, and the archive checked for gaps (issue 20 item 4,
runbook 004 "Point-in-Time Recovery"). Every 5 minutes, for every database with `wal_archive`.

For each such database:
1. Drain the spool: every WAL file archive_command spooled is re-hashed, copied offsite (size and
   SHA-256 checked, retried with backoff), and removed from the spool only then.
2. Ask the cluster (pg_stat_archiver) whether archive_command is failing.
3. List the offsite archive and find gaps: every segment from the oldest base backup's start to
   the newest archived one, per timeline, with the history file of every timeline after the first.
4. Alert (once per finding, through the [[alerts]] channels): a gap, archive_command failing,
   a file that could not go offsite, a spool backlog older than 15 minutes.
Report: per database what went offsite (files, MiB, MiB/s), what is left in the spool, the
newest archived segment, the archiver's state and every gap by segment name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from blocks import DatabaseTarget, OffsiteStorage
from tasks.alerts import Alert, send_once_task
from tasks.backup import publish_offsite_task_for
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import lock_for, target_lock
from tasks.pitr import drain_spool_task
from tasks.pitr.archive import DrainResult, archive_info
from tasks.pitr.basebackup import base_backups
from tasks.pitr.gaps import ArchivedFile, Gap, find_gaps, wal_inventory
from tasks.pitr.layout import archive_prefix
from tasks.pitr.report import wal_archive_report
from tasks.pitr.status import ArchiverStatus, archiver_status
from tasks.reporting import final_state, publish_summary
from tradeops.wal.names import DEFAULT_SEGMENT_SIZE, wal_kind

# Ours (the runbooks give no WAL numbers): a spooled file waiting longer than this means the drain
# is not running or cannot reach offsite, and everything since is lost with the database host.
SPOOL_BACKLOG_MINUTES = 15


@dataclass
class TargetArchive:
    target: str
    drain: DrainResult
    status: ArchiverStatus
    system_identifier: int | None = None
    newest_segment: str | None = None
    archived_files: int = 0
    gaps: list[Gap] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@flow(name="wal-archive", **FAILURE_HOOKS)
def wal_archive(environment: str = "default") -> State:
    env = load_environment(environment)
    storage = env.block.offsite()
    targets = [db for db in env.block.databases() if db.wal_archive]
    if storage is None or not targets:
        reason = "no [offsite] storage" if storage is None else "no database has wal_archive = true"
        result = publish_summary("wal-archive", env.name, env.store_url, f"# WAL archive: {env.name}\n\n{reason}",
                                 {"targets": [], "note": reason}, None)
        return final_state(result, None)
    outcomes = [archive_target(env, storage, db) for db in targets]
    alert(env, outcomes)
    markdown, result, failure = wal_archive_report(env.name, outcomes, time.time())
    return final_state(publish_summary("wal-archive", env.name, env.store_url, markdown, result, failure,
                                       reports_dir=str(env.block.output_dir("reports"))), failure)


def archive_target(env: LoadedEnvironment, storage: OffsiteStorage, db: DatabaseTarget) -> TargetArchive:
    # the archiver first: whatever it says it archived is in the spool by the time the drain starts
    status = archiver_status(db.url.get_secret_value())
    with target_lock(lock_for("wal", env.name, db.target, env.store_url), f"the WAL spool of db:{db.target}"):
        drain = drain_spool_task(storage, env.name, db.target, Path(db.wal_spool), publish_offsite_task_for(storage))
    outcome = TargetArchive(db.target, drain, status)
    outcome.problems += drain.failures
    if problem := status.problem():
        outcome.problems.append(problem)
    systems = {status.system_identifier} if status.system_identifier else drain.systems
    for system in sorted(systems):
        prefix = archive_prefix(env.name, db.target, system)
        info = archive_info(storage, prefix)
        inventory = wal_inventory(storage, prefix, info["wal_segment_size"] if info else DEFAULT_SEGMENT_SIZE)
        for waiting in drain.left:  # still spooled (reported as such): late, not lost
            if waiting.system_identifier == system:
                inventory.files.setdefault(waiting.name, ArchivedFile(waiting.name, waiting.sha256, ""))
        backups = [b for b in base_backups(storage, env.name, db.target) if b.system_identifier == system]
        since = backups[0].start_segment() if backups else None
        outcome.system_identifier = system
        outcome.newest_segment = max((n for n, f in inventory.files.items() if f.key and wal_kind(n) == "segment"),
                                     default=None)
        outcome.archived_files = sum(1 for f in inventory.files.values() if f.key)
        outcome.gaps += find_gaps(inventory, since)
    last = status.last_archived_wal
    if last and wal_kind(last) == "segment" and (outcome.newest_segment or "") < last \
            and last not in {f.name for f in drain.left}:
        outcome.problems.append(f"PostgreSQL archived {last}, but it is neither offsite nor in the spool {db.wal_spool}: "
                                "does archive_command write to another folder, or does this flow run on another "
                                "host than the database?")
    return outcome


def alert(env: LoadedEnvironment, outcomes: list[TargetArchive]) -> None:
    channels = env.block.alert_channels()
    if not channels:
        return
    now = time.time()
    for outcome in outcomes:
        target = f"db:{outcome.target}"
        alerts = [Alert(f"wal-gap:{outcome.target}:{outcome.system_identifier}:{gap.first}", "high",
                        f"{target}: WAL archive gap, point-in-time recovery cannot pass it", gap.describe(), target,
                        "TradeopsWalArchiveGap") for gap in outcome.gaps]
        if outcome.status.failing:
            alerts.append(Alert(f"wal-archiver-failing:{outcome.target}:{outcome.status.last_failed_wal}", "high",
                                f"{target}: archive_command is failing", outcome.status.problem() or "", target,
                                "TradeopsWalArchiveFailing"))
        alerts += [Alert(f"wal-offsite:{outcome.target}:{failure.split(':', 1)[0]}", "high",
                         f"{target}: a WAL file could not go offsite", failure, target, "TradeopsWalOffsiteFailed")
                   for failure in outcome.drain.failures]
        age = outcome.drain.oldest_left_age(now)
        if age is not None and age > SPOOL_BACKLOG_MINUTES * 60:
            oldest = min(outcome.drain.left, key=lambda f: f.spooled_at)
            alerts.append(Alert(f"wal-backlog:{outcome.target}:{oldest.name}", "medium",
                                f"{target}: WAL waiting in the spool for {age / 60:.0f} min",
                                f"{len(outcome.drain.left)} file(s) not offsite, oldest {oldest.name}", target,
                                "TradeopsWalSpoolBacklog"))
        for item in alerts:
            send_once_task(env.store_url, env.name, item, channels)
