"""The pre-maintenance checklist (runbook 001 "Pre-Maintenance Checklist"), as data and judges.

Every item is measured, then judged against its rule; maintenance starts only when all pass, and
a failing item is reported with its measured value. The runbook's comparisons are strict:
"connections < 10", "disk space > 20% free", and a verified backup younger than 24 hours, so
10 connections, exactly 20% free and a backup exactly 24 h old each stop the run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from tasks.backup.catalog import SIDE_KINDS
from tasks.backup.kinds import WHOLE_DATABASE_KINDS
from tradeops.config_values import clock_window
from tradeops.store import BackupArtifact, BackupSet, session_for

PREFLIGHT_LIMITS = {
    "backup_max_age_hours": 24,   # runbook 001 checklist 1 "Verify backup completed successfully"; issue 5: < 24 h
    "max_connections": 10,        # runbook 001 checklist 2 "Check active connections < 10"
    "min_disk_free_ratio": 0.20,  # runbook 001 checklist 4 "Monitor disk space > 20% free"
}
DATABASE_ARTIFACT_KINDS = tuple(sorted(WHOLE_DATABASE_KINDS))  # a verified copy of the whole database counts as its backup


@dataclass(frozen=True)
class PreflightItem:
    name: str
    passed: bool
    measured: str
    rule: str

    def line(self) -> str:
        return f"{self.name}: {self.measured} ({'ok' if self.passed else 'required'}: {self.rule})"


# -- judges: plain comparisons, tested at their exact boundaries ----------------------------------

def judge_backup_age(age_hours: float | None, limits: dict = PREFLIGHT_LIMITS) -> PreflightItem:
    rule = f"a verified backup younger than {limits['backup_max_age_hours']} h"
    if age_hours is None:
        return PreflightItem("verified backup", False, "no verified backup of this database", rule)
    return PreflightItem("verified backup", age_hours < limits["backup_max_age_hours"],
                         f"newest verified backup is {age_hours:.1f} h old", rule)


def judge_connections(count: int, limits: dict = PREFLIGHT_LIMITS) -> PreflightItem:
    return PreflightItem("connections", count < limits["max_connections"], f"{count} other connection(s)",
                         f"fewer than {limits['max_connections']}")


def judge_disk(free_ratio: float | None, where: str, limits: dict = PREFLIGHT_LIMITS) -> PreflightItem:
    rule = f"more than {limits['min_disk_free_ratio']:.0%} free"
    if free_ratio is None:
        return PreflightItem("disk free", False, f"cannot measure the disk of {where}", rule)
    return PreflightItem("disk free", free_ratio > limits["min_disk_free_ratio"],
                         f"{free_ratio:.1%} free on {where}", rule)


def judge_critical_work(probe_rows: int | None, blackout: str | None) -> PreflightItem:
    rule = "no critical work in progress (probe returns no rows, outside blackout windows)"
    if blackout:
        return PreflightItem("critical work", False, f"inside the blackout window {blackout} UTC", rule)
    if probe_rows:
        return PreflightItem("critical work", False, f"the critical-work probe returned {probe_rows} row(s)", rule)
    return PreflightItem("critical work", True, "none in progress", rule)


# -- measurements ---------------------------------------------------------------------------------

OTHER_CLIENT_CONNECTIONS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


def verified_backup_age_hours(store_url: str, environment: str, target: str, now: datetime) -> float | None:
    """Age of the newest verified dump of `target` in the backup catalog, None if there is none."""
    query = (select(BackupArtifact.created_at)
             .join(BackupSet, BackupSet.set_id == BackupArtifact.set_id)
             .where(BackupSet.environment == environment, BackupSet.status == "complete",
                    BackupSet.kind.not_in(SIDE_KINDS),
                    BackupArtifact.target == target, BackupArtifact.kind.in_(DATABASE_ARTIFACT_KINDS),
                    BackupArtifact.verified_at.is_not(None))
             .order_by(BackupArtifact.created_at.desc()))
    with session_for(store_url) as session:
        created = session.exec(query).first()
    return None if created is None else (now - created).total_seconds() / 3600


def other_connections(cur) -> int:
    """Every other client session on this database, idle ones included: each holds locks or
    snapshots that VACUUM and REINDEX must wait for."""
    cur.execute(OTHER_CLIENT_CONNECTIONS)
    return cur.fetchone()[0]


def disk_free_ratio(path: str) -> float | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free / usage.total


def blackout_window(now: datetime, windows: list[str]) -> str | None:
    """The window ("HH:MM-HH:MM", UTC, may cross midnight) that `now` falls in, if any."""
    moment = now.time()
    for window in windows:
        start, end = clock_window(window)  # the parser apply checked the windows with
        inside = start <= moment < end if start <= end else (moment >= start or moment < end)
        if inside:
            return window
    return None


def critical_work_rows(cur, probe: str | None) -> int | None:
    if not probe:
        return None
    cur.execute(probe)
    return len(cur.fetchall())
