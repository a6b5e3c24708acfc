"""Point-in-time recovery into a scratch cluster (runbook 004 "Point-in-Time Recovery").

1. Choose the newest base backup that stopped at or before the target time (any, for latest).
2. Fetch its files, check each SHA-256 against its backup.json, unpack them into a new data
   directory, and check the result with pg_verifybackup against the backup's own manifest.
3. Configure the scratch cluster: a private socket folder and a free port, no TCP, trust only on
   that socket, archive_mode off (a restored cluster must never archive into the production
   archive), restore_command asking this process's fetcher (tasks/pitr/fetcher.py), the recovery
   target, and `recovery_target_action = promote`, then recovery.signal.
4. Start it with pg_ctl, wait for the promotion, read where replay stopped, run the probe query.
5. Leave it running for the user (its port, socket folder and data directory are reported), or
   stop it and remove the folder.

Recovery target semantics are PostgreSQL's: with a time T, replay stops before the first
transaction that committed after T (`recovery_target_inclusive = on`, the default) or at or after
T (`off`). A restore to a time between two commits therefore holds the first and not the second.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tarfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import quote, urlparse

import psycopg2

from blocks import OffsiteStorage
from tasks.databases import connect, libpq_dsn
from tradeops.files import sha256_file
from tasks.pitr import cluster
from tasks.pitr.archive import archive_info
from tasks.pitr.basebackup import BaseBackup, base_backups, describe_backup
from tasks.pitr.fetcher import WalFetcher
from tasks.pitr.gaps import find_gaps, wal_inventory
from tasks.pitr.layout import archive_prefix
from tradeops.wal.queue import REQUESTS

RECOVERY_TIMEOUT_SECONDS = 1800
NOT_REACHED = "recovery ended before configured recovery target was reached"


class PitrError(Exception):
    """The restore could not be done; the message says why and what to do."""


@dataclass
class PitrResult:
    target: str
    target_time: str  # ISO time, or "latest"
    inclusive: bool
    backup_id: str = ""
    backup: str = ""
    folder: str = ""
    data_dir: str = ""
    socket_dir: str = ""
    port: int = 0
    server_major: int = 0
    running: bool = False
    database_url: str = ""  # the restored database, over the private socket (no secret in it)
    recovered_to: str | None = None  # commit time of the last transaction replayed
    timeline: int | None = None
    gaps: list[str] = field(default_factory=list)  # in the archive after the base backup
    wal_fetched: int = 0
    wal_bytes: int = 0
    fetch_seconds: float = 0.0
    recovery_seconds: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def choose_base_backup(backups: list[BaseBackup], target_time: datetime | None) -> BaseBackup:
    """The newest complete base backup that stopped at or before `target_time` (any for latest)."""
    usable = [b for b in backups if target_time is None or b.stopped_at <= target_time]
    if not usable:
        oldest = min((b.stop_time for b in backups), default=None)
        raise PitrError(f"no base backup stopped at or before {target_time.isoformat()}"
                        + (f"; the oldest stopped {oldest}" if oldest else "; there is no base backup at all: "
                           "run the base-backup flow first"))
    return max(usable, key=lambda b: b.stopped_at)


def fetch_base_backup(storage: OffsiteStorage, backup: BaseBackup, folder: Path) -> int:
    """Download the backup's files into `folder`, each checked against backup.json; bytes fetched."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    total = 0
    for item in backup.files:
        path = storage.download_file(item.key, folder / item.name)
        actual = sha256_file(path)
        if actual != item.sha256:
            raise PitrError(f"base backup {backup.backup_id}: {item.name} hashes to {actual}, its backup.json says "
                            f"{item.sha256}: damaged offsite copy ({item.key})")
        total += item.size
    return total


def unpack(base: Path, data: Path) -> None:
    data.mkdir(mode=0o700)
    with tarfile.open(base / "base.tar") as archive:
        archive.extractall(data, filter="data")
    with tarfile.open(base / "pg_wal.tar") as archive:
        archive.extractall(data / "pg_wal", filter="data")
    data.chmod(0o700)


def verify_unpacked(backup: BaseBackup, base: Path, data: Path) -> None:
    """pg_verifybackup: every file of the backup's manifest, its size and SHA-256, and the WAL
    from start to stop LSN parsed."""
    done = subprocess.run([cluster.pg_binary("pg_verifybackup", backup.major), "--quiet",
                           "--manifest-path", str(base / "backup_manifest"), str(data)],
                           capture_output=True, text=True)
    if done.returncode != 0:
        raise PitrError(f"base backup {backup.backup_id} does not verify against its manifest: "
                        f"{done.stderr.strip()[-500:]}")


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def recovery_settings(data: Path, queue: Path, socket_dir: Path, port: int, target_time: datetime | None,
                      inclusive: bool) -> dict[str, str]:
    command = f"{cluster.wal_cli_command()} get %f %p --queue {shlex.quote(str(queue))}"
    settings = {
        "port": str(port), "listen_addresses": _quoted(""), "unix_socket_directories": _quoted(str(socket_dir)),
        "hba_file": _quoted(str(data / "pg_hba.conf")), "ident_file": _quoted(str(data / "pg_ident.conf")),
        "external_pid_file": _quoted(""), "ssl": "off", "logging_collector": "off",
        "shared_preload_libraries": _quoted(""), "archive_mode": "off", "hot_standby": "on",
        "restore_command": _quoted(command), "recovery_target_action": _quoted("promote"),
        "recovery_target_timeline": _quoted("latest"),
    }
    if target_time is not None:
        settings["recovery_target_time"] = _quoted(target_time.astimezone(timezone.utc).isoformat())
        settings["recovery_target_inclusive"] = "on" if inclusive else "off"
    return settings


def configure(data: Path, settings: dict[str, str], note: str) -> None:
    """Settings after everything the source had (postgresql.auto.conf is read last), trust on the
    private socket only, and recovery.signal."""
    conf = data / "postgresql.conf"
    if not conf.exists():  # Debian keeps it in /etc: the backup has none
        conf.write_text("# restored by tradeops: the source cluster kept its configuration outside the data dir\n")
    (data / "pg_hba.conf").write_text("# tradeops PITR scratch cluster: its private socket only\nlocal all all trust\n")
    (data / "pg_ident.conf").touch()
    with open(data / "postgresql.auto.conf", "a") as handle:
        handle.write(f"\n# {note}\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))
    (data / "recovery.signal").touch()


def socket_url(socket_dir: Path, port: int, user: str, database: str) -> str:
    return f"postgresql://{quote(user)}@/{quote(database)}?host={quote(str(socket_dir))}&port={port}"


def wait_for_promotion(major: int, data: Path, url: str, log: Path, fetcher: WalFetcher, timeout: float,
                       gaps: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect(url) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                if not cur.fetchone()[0]:
                    return
        except psycopg2.OperationalError:
            if not cluster.is_running(major, data):
                raise PitrError(failure_reason(log, fetcher, gaps)) from None
        time.sleep(0.2)
    raise PitrError(f"recovery did not finish within {timeout:.0f} s; last log lines: {cluster.log_tail(log)}")


def failure_reason(log: Path, fetcher: WalFetcher, gaps: list[str]) -> str:
    if fetcher.stats.refused:
        return "WAL refused by its checksum: " + "; ".join(fetcher.stats.refused)
    if fetcher.error is not None:
        return f"fetching WAL from the archive failed: {type(fetcher.error).__name__}: {fetcher.error}"
    tail = cluster.log_tail(log)
    if NOT_REACHED in tail and gaps:
        return (f"replay stopped at a gap in the WAL archive before the target time ({'; '.join(gaps)}); restore "
                f"to a time before the gap. Server log: {tail}")
    if NOT_REACHED in tail:
        return ("the archive holds no transaction committed after the target time, so PostgreSQL cannot tell it "
                "reached it (it stops only on a later commit); restore to latest instead, or to an earlier time. "
                f"Server log: {tail}")
    return f"the restored cluster stopped during recovery: {tail}"


def restore_to_time(storage: OffsiteStorage, environment: str, target: str, source_url: str,
                    target_time: datetime | None, folder: Path, inclusive: bool = True, keep_running: bool = False,
                    timeout: float = RECOVERY_TIMEOUT_SECONDS, probe_query: str | None = None,
                    progress: Callable[[float], None] | None = None) -> PitrResult:
    """Restore `target` to `target_time` (None: latest) into a scratch cluster under `folder`;
    `progress` hears the percentage done after each step."""
    started = time.monotonic()
    progress = progress or (lambda percent: None)
    result = PitrResult(target, target_time.isoformat() if target_time else "latest", inclusive, folder=str(folder))
    if folder.exists() and any(folder.iterdir()):
        raise PitrError(f"{folder} exists and is not empty: choose another folder or remove it")
    backup = choose_base_backup(base_backups(storage, environment, target), target_time)
    result.backup_id, result.backup, result.server_major = backup.backup_id, describe_backup(backup), backup.major
    prefix = archive_prefix(environment, target, backup.system_identifier)
    info = archive_info(storage, prefix)
    segment_size = info["wal_segment_size"] if info else backup.wal_segment_size
    result.gaps = [g.describe() for g in find_gaps(wal_inventory(storage, prefix, segment_size), backup.start_segment())
                   if g.timeline >= backup.timeline]
    if result.gaps and target_time is None:
        raise PitrError(f"the WAL archive has gaps after base backup {backup.backup_id} ({'; '.join(result.gaps)}): "
                        "a restore to latest would silently stop at the first; restore to a time before it")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    data, queue, socket_dir, log = folder / "data", folder / "queue", folder / "socket", folder / "server.log"
    fetcher = None
    major = backup.major
    try:
        for path in (queue, queue / REQUESTS, socket_dir):
            path.mkdir(mode=0o700)
        fetch_base_backup(storage, backup, folder / "base")
        progress(30.0)
        unpack(folder / "base", data)
        verify_unpacked(backup, folder / "base", data)
        shutil.rmtree(folder / "base")
        progress(45.0)
        result.fetch_seconds = time.monotonic() - started
        result.port = cluster.free_port()
        configure(data, recovery_settings(data, queue, socket_dir, result.port, target_time, inclusive),
                  f"tradeops point-in-time restore of {target} from base backup {backup.backup_id}")
        cluster.hand_to_owner(folder)
        if not cluster.owner_can_write(folder):
            raise PitrError(f"{folder}: the cluster owner ({cluster.CLUSTER_OWNER_AS_ROOT}) cannot reach it; choose "
                            "a folder whose parents it can enter")
        user = urlparse(libpq_dsn(source_url)).username or "postgres"
        database = urlparse(libpq_dsn(source_url)).path.lstrip("/") or "postgres"
        result.database_url = socket_url(socket_dir, result.port, user, database)
        result.data_dir, result.socket_dir = str(data), str(socket_dir)
        fetcher = WalFetcher(storage, prefix, queue, segment_size)
        fetcher.start()
        recovery_started = time.monotonic()
        try:
            cluster.start(major, data, log, timeout)
        except cluster.ClusterError:
            raise PitrError(failure_reason(log, fetcher, result.gaps)) from None
        progress(60.0)
        wait_for_promotion(major, data, socket_url(socket_dir, result.port, user, "postgres"), log, fetcher, timeout,
                           result.gaps)
        result.recovery_seconds = time.monotonic() - recovery_started
        progress(90.0)
        with connect(result.database_url) as conn, conn.cursor() as cur:
            # the timeline from the WAL being written: pg_control has it only after the next checkpoint
            cur.execute("SELECT pg_last_xact_replay_timestamp(), pg_walfile_name(pg_current_wal_lsn())")
            replayed, current_wal = cur.fetchone()
            result.recovered_to, result.timeline = replayed.isoformat() if replayed else None, int(current_wal[:8], 16)
            if probe_query:
                try:
                    cur.execute(probe_query)
                    cur.fetchall()
                except psycopg2.Error as exc:
                    result.problems.append(f"probe query failed: {str(exc).strip().splitlines()[0]}")
        result.running = True
    except Exception as exc:  # noqa: BLE001 - offsite, disk, server: named in the result, the cluster cleaned up
        result.problems.append(str(exc) if isinstance(exc, (PitrError, cluster.ClusterError))
                               else f"{type(exc).__name__}: {exc}")
    finally:
        if fetcher is not None:
            fetcher.stop()
            result.wal_fetched, result.wal_bytes = len(fetcher.stats.fetched), fetcher.stats.bytes
        if not (keep_running and result.running and result.passed):
            cluster.stop(major, data)
            result.running = False
            shutil.rmtree(folder, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def stop_restored(result: PitrResult) -> None:
    """Stop a cluster a restore left running and remove its folder."""
    cluster.stop(result.server_major, Path(result.data_dir))
    shutil.rmtree(result.folder, ignore_errors=True)
    result.running = False
