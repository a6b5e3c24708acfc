"""Proof of the recovery point a point-in-time restore reaches (the DR drill's RPO, issue 20):
every row the source wrote up to `window` before the target time is in the restored database,
unchanged. Rows are those of the target's freshness table, dated by its freshness column (an
append-only table: trades, regime history), counted and content-hashed on both sides the way
backups hash tables (`sum(hashtextextended(row::text, 0))`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from psycopg2 import sql

from tasks.databases import connect

RPO_WINDOW = timedelta(minutes=1)  # issue 20: rows written up to a minute before the chosen time


@dataclass(frozen=True)
class RpoProof:
    table: str
    cutoff: str  # target time minus the window
    source_rows: int
    restored_rows: int
    source_checksum: int
    restored_checksum: int
    newest_restored: str | None  # newest row at or before the target time in the restore
    rpo_seconds: float | None  # target time minus that row's time: the data loss the restore shows

    @property
    def passed(self) -> bool:
        return self.source_rows == self.restored_rows and self.source_checksum == self.restored_checksum

    def describe(self) -> str:
        if self.passed:
            return (f"{self.table}: all {self.source_rows:,} rows up to {self.cutoff} restored, content equal; "
                    f"newest restored row {self.newest_restored}")
        return (f"{self.table}: rows up to {self.cutoff}: source {self.source_rows:,} (checksum "
                f"{self.source_checksum}), restored {self.restored_rows:,} (checksum {self.restored_checksum})")

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def _facts(url: str, table: str, column: str, cutoff: datetime, target_time: datetime) -> tuple:
    name = sql.Identifier(*table.split("."))
    col = sql.Identifier(column)
    query = sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0), "
                    "(SELECT max({col}) FROM {name} WHERE {col} <= %s) FROM {name} t WHERE {col} <= %s"
                    ).format(col=col, name=name)
    with connect(url, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
                    "SET LOCAL extra_float_digits = 3")
        cur.execute(query, (target_time, cutoff))
        return cur.fetchone()


def prove_rpo(source_url: str, restored_url: str, table: str, column: str, target_time: datetime,
              window: timedelta = RPO_WINDOW) -> RpoProof:
    cutoff = target_time - window
    source_rows, source_sum, _ = _facts(source_url, table, column, cutoff, target_time)
    restored_rows, restored_sum, newest = _facts(restored_url, table, column, cutoff, target_time)
    rpo = (target_time - newest).total_seconds() if isinstance(newest, datetime) and newest.tzinfo else None
    return RpoProof(table, cutoff.isoformat(), source_rows, restored_rows, int(source_sum), int(restored_sum),
                    newest.isoformat() if newest is not None else None, rpo)
