"""The operations calendar, proven over 120 days (issue 20): the real scheduled jobs of
deployments/calendar.py, at the times Prefect's own scheduler computes from their crons, run one
after another on a fake clock (tradeops.clock) against a small sandbox: daily and weekly backups
(each ending with verify-backups), Sunday maintenance, the monthly compliance report and the
quarterly DR drill. On day 60 the offsite store moves to another folder (another bucket).

Asserted every simulated day:
- every job ran and completed; maintenance found a verified backup younger than 24 h;
- retention kept exactly what each class promises (runbooks: daily git bundles and archives 30
  days, daily dumps 90, weekly sets 12 weeks, the audit trail 7 years), counted independently
  from the sets' creation times, and removed the files of what it did not keep;
- every kept set was verified within the last 7 days;
- after the move, every kept set is whole in the new store.
The day-by-day summary is printed as a table (pytest -s shows it).

Jobs that run every few minutes (health-check, wal-archive) or read real wall-clock data (log
archival, certificates) are not part of it: their time behaviour is tested on their own. The shallow
health check runs on an interval (every 30 s: 345,600 runs in 120 days), which no cron here could
express; it is not simulated either (tests/test_deployments.py checks its schedule).
"""

from __future__ import annotations

import asyncio
import getpass
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prefect.server.schemas.schedules import CronSchedule
from sqlmodel import select

from blocks import OffsiteStorage
from deployments.calendar import scheduled_jobs
from flows import load_flow
from tasks.backup.catalog import REVERIFY_DAYS, retention_days
from tradeops.cli.common import apply_file
from tradeops.clock import frozen_at
from tradeops.store import BackupArtifact, BackupSet, session_for

pytestmark = pytest.mark.prefect  # runs flows on the session's Prefect server

DAYS = 120
START = datetime(2027, 1, 1, tzinfo=timezone.utc)  # a Friday; a quarter and a month begin
MOVE_OFFSITE_ON_DAY = 60
SIMULATED = ("daily-backup", "weekly-backup", "db-maintenance", "compliance-report", "dr-drill")


@dataclass
class Day:
    number: int
    jobs: list[str] = field(default_factory=list)
    kept: Counter = field(default_factory=Counter)
    oldest_verification_days: float = 0.0


def due_today(day: datetime) -> list[tuple[datetime, object]]:
    """(scheduled time, job) of every simulated job due on `day`, in time order, as Prefect's
    scheduler computes them from the calendar's crons."""
    due = []
    for job in scheduled_jobs():
        if job.flow in SIMULATED:
            schedule = CronSchedule(cron=job.cron, timezone="UTC", day_or=job.day_or)
            for moment in asyncio.run(schedule.get_dates(start=day, end=day + timedelta(days=1, microseconds=-1))):
                due.append((moment.astimezone(timezone.utc), job))
    return sorted(due, key=lambda item: item[0])


def write_config(root: Path, name: str, offsite: Path) -> Path:
    config = root / "tradeops.toml"
    config.write_text(f"""
[environment]
name = "{name}"
data_dir = "ops"
[ops_store]
url = "sqlite:///ops/ops.db"
[offsite]
url = "file://{offsite}"
[[databases]]
name = "platform"
url = "sqlite:///{root}/platform.db"
[[git]]
name = "strategies"
root = "repos"
[[configs]]
name = "platform-config"
paths = ["config"]
[access]
users = {{ svc = "system_administrator" }}
user = "svc"
logins = {{ "{getpass.getuser()}" = "svc" }}  # whoever runs the test applies the move to another store
""")
    return config


def commit(repo: Path, day: int) -> None:
    (repo / "params.yaml").write_text(f"lookback: {day}\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=sim", "-c", "user.email=sim@example.com", "commit",
                    "-qm", f"day {day}"], check=True, capture_output=True)


@pytest.fixture
def platform(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "platform.db") as conn:
        conn.execute("CREATE TABLE positions (id INTEGER PRIMARY KEY, symbol TEXT, qty REAL)")
        conn.executemany("INSERT INTO positions (symbol, qty) VALUES (?, ?)", [("ES", i) for i in range(200)])
    repo = tmp_path / "repos" / "momentum_alpha"
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit(repo, 0)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "risk.yml").write_text("max_drawdown: 0.1\n")
    return tmp_path


def kept_artifacts(store: str, name: str) -> list[tuple[BackupSet, BackupArtifact]]:
    with session_for(store) as session:
        return list(session.exec(select(BackupSet, BackupArtifact)
                                 .join(BackupArtifact, BackupArtifact.set_id == BackupSet.set_id)
                                 .where(BackupSet.environment == name, BackupSet.status == "complete",
                                        BackupArtifact.removed_at.is_(None))).all())


def all_artifacts(store: str, name: str) -> list[tuple[BackupSet, BackupArtifact]]:
    with session_for(store) as session:
        return list(session.exec(select(BackupSet, BackupArtifact)
                                 .join(BackupArtifact, BackupArtifact.set_id == BackupSet.set_id)
                                 .where(BackupSet.environment == name)).all())


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@pytest.mark.slow
def test_120_days_of_the_calendar(platform, capsys):
    name = f"sim-{platform.name[-6:].lower().replace('_', '-')}".strip("-")
    store = f"sqlite:///{platform / 'ops' / 'ops.db'}"
    offsite = platform / "offsite-a"
    apply_file(write_config(platform, name, offsite), quiet=True)
    days: list[Day] = []
    last_retention: datetime | None = None
    for number in range(DAYS):
        day_start = START + timedelta(days=number)
        record = Day(number)
        if number == MOVE_OFFSITE_ON_DAY:  # the offsite store moves: another folder, as another bucket
            offsite = platform / "offsite-b"
            apply_file(write_config(platform, name, offsite), quiet=True)
        if number % 9 == 4:
            commit(platform / "repos" / "momentum_alpha", number)  # a strategy changes now and then
        for moment, job in due_today(day_start):
            with frozen_at(moment):
                state = load_flow(job.flow)(environment=name, return_state=True, **job.parameters)
            result = state.result(raise_on_failure=False)
            assert state.is_completed(), f"day {number} {moment:%H:%M} {job.deployment}: {state.message}"
            record.jobs.append(job.flow)
            if job.flow in ("daily-backup", "weekly-backup"):
                last_retention = moment
            if job.flow == "db-maintenance":  # it ran because the pre-flight found a fresh verified backup
                [item] = [i for i in result["databases"][0]["preflight"] if i["name"] == "verified backup"]
                assert item["passed"], f"day {number}: {item}"

        # retention kept exactly what each class promises, counted from the sets' creation times
        rows = all_artifacts(store, name)
        for backup_set, artifact in rows:
            if backup_set.status != "complete":
                continue
            age = last_retention - utc(backup_set.created_at)
            should_keep = age < timedelta(days=retention_days(backup_set.kind, artifact.kind, {}))
            kept = artifact.removed_at is None
            assert kept == should_keep, (f"day {number}: {backup_set.set_id} {artifact.target} {artifact.kind} "
                                         f"{age.days} days old: kept={kept}")
            assert Path(artifact.path).exists() == kept  # the bytes went with the record
        assert not [s for s, _ in rows if s.status == "expired" and Path(s.manifest_path).parent.exists()]

        # every kept set verified in the last 7 days
        sets = {s.set_id: s for s, _ in kept_artifacts(store, name)}
        ages = [(day_start + timedelta(days=1) - utc(s.verified_at)) / timedelta(days=1) if s.verified_at else 999
                for s in sets.values()]
        record.oldest_verification_days = max(ages)
        assert record.oldest_verification_days <= REVERIFY_DAYS, f"day {number}: a set went unverified"
        for backup_set, artifact in kept_artifacts(store, name):
            record.kept[f"{backup_set.kind}:{artifact.kind}"] += 1
        days.append(record)

    # after the move, every kept artifact, and every kept set's manifests, are whole in the new store
    storage = OffsiteStorage(url=f"file://{offsite}")
    for backup_set, artifact in kept_artifacts(store, name):
        assert storage.size(artifact.offsite_key) == artifact.size, artifact.offsite_key
        assert storage.size(f"{name}/{backup_set.set_id}/manifest.json") is not None

    classes = sorted({c for d in days for c in d.kept})
    header = "| day | date | jobs | " + " | ".join(classes) + " | oldest verification (days) |"
    lines = [header, "|" + "---|" * (4 + len(classes))]
    for d in days:
        jobs = ", ".join(f"{j}" for j in d.jobs)
        lines.append(f"| {d.number} | {START + timedelta(days=d.number):%a %Y-%m-%d} | {jobs} | "
                     + " | ".join(str(d.kept[c]) for c in classes) + f" | {d.oldest_verification_days:.2f} |")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    runs = Counter(j for d in days for j in d.jobs)
    assert runs["daily-backup"] == DAYS and runs["dr-drill"] == 2 and runs["weekly-backup"] == 17
    assert days[-1].kept["daily:git_bundle"] == 30 and days[-1].kept["daily:sqlite_db"] == 90
    assert days[-1].kept["weekly:sqlite_db"] == 12
