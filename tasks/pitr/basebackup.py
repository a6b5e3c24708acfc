"""Base backups for point-in-time recovery: `pg_basebackup` in tar format with the WAL it needs to
be consistent (`-X stream`, pg_wal.tar), a backup_manifest with SHA-256 per file, offsite.

Each backup is recorded in its own `backup.json` next to its files, written last: the files with
size and SHA-256, the timeline, start and stop LSN, and start and stop time on the database's own
clock (the clock commit times, and so recovery_target_time, are read on). A restore to time T
starts from the newest backup that stopped at or before T.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

from blocks import OffsiteStorage
from tasks.databases import connect, libpq_command_env
from tradeops.files import atomic_write_bytes, sha256_file
from tasks.pitr.archive import Upload
from tasks.pitr.cluster import pg_binary
from tasks.pitr.layout import BACKUP_INFO, archive_prefix, base_prefix, system_of_key, target_prefix
from tradeops.wal.names import Segment, parse_lsn, segment_of_lsn

CLUSTER_FACTS = """
SELECT clock_timestamp(), (SELECT system_identifier FROM pg_control_system()),
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
       current_setting('server_version_num')::int, current_setting('archive_mode'), pg_is_in_recovery()
"""
EXPECTED_FILES = ("base.tar", "pg_wal.tar", "backup_manifest")


class BaseBackupError(Exception):
    """A base backup could not be taken or read; the message says why."""


@dataclass(frozen=True)
class BackupFile:
    name: str
    size: int
    sha256: str
    key: str = ""


@dataclass(frozen=True)
class BaseBackup:
    backup_id: str
    environment: str
    target: str
    system_identifier: int
    timeline: int
    start_lsn: str
    stop_lsn: str
    start_time: str  # ISO 8601 with offset, the database's clock
    stop_time: str
    wal_segment_size: int
    server_version_num: int
    files: tuple[BackupFile, ...] = field(default_factory=tuple)

    @property
    def major(self) -> int:
        return self.server_version_num // 10000

    @property
    def stopped_at(self) -> datetime:
        return datetime.fromisoformat(self.stop_time)

    def start_segment(self) -> Segment:
        return segment_of_lsn(self.timeline, parse_lsn(self.start_lsn), self.wal_segment_size)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BaseBackup":
        return cls(**{**data, "files": tuple(BackupFile(**f) for f in data["files"])})


def new_backup_id(now: datetime) -> str:
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def take_base_backup(url: str, environment: str, target: str, folder: Path) -> BaseBackup:
    """pg_basebackup into `folder` (tar format, WAL streamed alongside, checksummed manifest)."""
    try:
        with connect(url) as conn, conn.cursor() as cur:
            cur.execute(CLUSTER_FACTS)
            started, sysid, segment_size, version, archive_mode, in_recovery = cur.fetchone()
    except psycopg2.Error as exc:
        raise BaseBackupError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from None
    if archive_mode not in ("on", "always"):
        raise BaseBackupError(f"archive_mode is {archive_mode} on this cluster: without WAL archiving a base backup "
                              "cannot be rolled forward to a point in time (see README, Point-in-time recovery)")
    if in_recovery:
        raise BaseBackupError("the server is a standby; take base backups from the primary")
    backup_id = new_backup_id(started)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    dsn, secret_env = libpq_command_env(url)
    done = subprocess.run([pg_binary("pg_basebackup", version // 10000), f"--dbname={dsn}", "-D", str(folder),
                           "--format=tar", "--wal-method=stream", "--checkpoint=fast", "--no-password",
                           "--manifest-checksums=SHA256", f"--label=tradeops {backup_id}"],
                          env={**os.environ, **secret_env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise BaseBackupError(f"pg_basebackup failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT clock_timestamp()")
        stopped = cur.fetchone()[0]
    extra = sorted(p.name for p in folder.iterdir() if p.name not in EXPECTED_FILES)
    if extra:
        raise BaseBackupError(f"pg_basebackup wrote {', '.join(extra)} besides {', '.join(EXPECTED_FILES)}: "
                              "tablespaces outside the data directory are not supported by the PITR restore")
    ranges = json.loads((folder / "backup_manifest").read_text())["WAL-Ranges"]
    files = tuple(BackupFile(name, (folder / name).stat().st_size, sha256_file(folder / name))
                  for name in EXPECTED_FILES)
    return BaseBackup(backup_id, environment, target, int(sysid), int(ranges[0]["Timeline"]),
                      ranges[0]["Start-LSN"], ranges[-1]["End-LSN"], started.isoformat(), stopped.isoformat(),
                      int(segment_size), int(version), files)


def publish_base_backup(storage: OffsiteStorage, backup: BaseBackup, folder: Path, upload: Upload) -> BaseBackup:
    """Upload every file (size and SHA-256 checked), then backup.json: a backup without its
    backup.json is incomplete and never chosen by a restore."""
    prefix = base_prefix(archive_prefix(backup.environment, backup.target, backup.system_identifier), backup.backup_id)
    files = []
    for item in backup.files:
        key = f"{prefix}/{item.name}"
        upload(storage, folder / item.name, key, item.sha256, item.size)
        files.append(BackupFile(item.name, item.size, item.sha256, key))
    published = BaseBackup(**{**backup.__dict__, "files": tuple(files)})
    info = json.dumps(published.as_dict(), indent=2).encode()
    atomic_write_bytes(folder / BACKUP_INFO, info)
    upload(storage, folder / BACKUP_INFO, f"{prefix}/{BACKUP_INFO}", sha256_file(folder / BACKUP_INFO), len(info))
    return published


def base_backups(storage: OffsiteStorage, environment: str, target: str) -> list[BaseBackup]:
    """Every complete base backup of the target offsite (all its clusters), oldest first."""
    found = []
    for key in storage.list_keys(target_prefix(environment, target) + "/"):
        parts = key.split("/")
        if parts[-1] == BACKUP_INFO and parts[-3] == "base" and system_of_key(key, environment, target):
            found.append(BaseBackup.from_dict(json.loads(storage.read_bytes(key))))
    return sorted(found, key=lambda b: b.stopped_at)


def describe_backup(backup: BaseBackup) -> str:
    size = sum(f.size for f in backup.files)
    return (f"{backup.backup_id} (timeline {backup.timeline}, {backup.start_lsn} .. {backup.stop_lsn}, stopped "
            f"{backup.stop_time}, {size / 2**20:.1f} MiB)")

