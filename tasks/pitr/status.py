"""The live cluster's side of WAL archiving: pg_stat_archiver says whether archive_command is
failing (PostgreSQL retries it forever, so a failure shows only here and in the server log), and
how far the archiver is behind the WAL being written."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg2

from tasks.databases import connect

ARCHIVER = """
SELECT (SELECT system_identifier FROM pg_control_system()), current_setting('archive_mode'),
       pg_walfile_name(pg_current_wal_lsn()), a.archived_count, a.last_archived_wal, a.last_archived_time,
       a.failed_count, a.last_failed_wal, a.last_failed_time
FROM pg_stat_archiver a
"""


@dataclass(frozen=True)
class ArchiverStatus:
    system_identifier: int | None = None
    archive_mode: str = ""
    current_wal: str = ""
    archived_count: int = 0
    last_archived_wal: str | None = None
    last_archived_time: str | None = None
    failed_count: int = 0
    last_failed_wal: str | None = None
    last_failed_time: str | None = None
    error: str = ""  # the cluster could not be asked

    @property
    def failing(self) -> bool:
        """archive_command's newest attempt failed (its last failure is newer than its last success)."""
        if not self.last_failed_time:
            return False
        return self.last_archived_time is None or self.last_failed_time > self.last_archived_time

    def problem(self) -> str | None:
        if self.error:
            return f"cannot read pg_stat_archiver: {self.error}"
        if self.archive_mode not in ("on", "always"):
            return f"archive_mode is {self.archive_mode}: nothing is archived (set archive_mode = on, restart)"
        if self.failing:
            return (f"archive_command is failing: {self.last_failed_wal} last failed at {self.last_failed_time} "
                    f"({self.failed_count} failures so far; the server log says why)")
        return None

    def as_dict(self) -> dict:
        return asdict(self)


def archiver_status(url: str) -> ArchiverStatus:
    try:
        with connect(url) as conn, conn.cursor() as cur:
            cur.execute(ARCHIVER)
            row = cur.fetchone()
    except psycopg2.Error as exc:
        return ArchiverStatus(error=str(exc).strip().splitlines()[0])
    sysid, mode, current, archived, last_wal, last_time, failed, failed_wal, failed_time = row
    return ArchiverStatus(int(sysid), mode, current, archived, last_wal, last_time.isoformat() if last_time else None,
                          failed, failed_wal, failed_time.isoformat() if failed_time else None)
