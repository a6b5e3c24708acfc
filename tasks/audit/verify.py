"""`tradeops audit verify`: recompute the ops store's audit chain and name its first break.

Rows are streamed in id order as plain tuples (a server-side cursor on PostgreSQL, all in one
REPEATABLE READ snapshot so appends made meanwhile cannot confuse the walk) and hashed with
`canonical_from_row`, the same bytes `canonical_audit_content` hashes. A window (--from/--to)
is the id range of the entries stamped inside it, anchored on the entry just before it: the
anchor's own hash is checked and the window's first entry must link to it, so rows deleted,
inserted or reordered at the window's edge are caught too; entries before the anchor are not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import Connection, func, select, text

from tasks.audit.chain import ChainBreak, EntryRef, Row, WalkResult, classify_break, walk
from tradeops.store import AuditEntry, open_store
from tradeops.store.canonical import ID, PG_ISO_TIMESTAMP, PREV_HASH, TIMESTAMP, iso_timestamp
from tradeops.store.records import GENESIS_HASH

FETCH_ROWS = 20_000
PARALLEL_MIN_ROWS = 200_000  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 4
_TABLE = AuditEntry.__table__
_COLUMNS = ('id, {timestamp}, operation, "user", strategy_name, version, repository_hash, execution_time_ms, '
            'success, changed_files, compliance_flags, details, flow_run_id, prev_hash, entry_hash')
# PostgreSQL hands the timestamp over already in canonical form; SQLite's text is normalised in Python.
_PG_TIMESTAMP = f"""to_char("timestamp" AT TIME ZONE 'UTC', '{PG_ISO_TIMESTAMP}')"""


@dataclass
class ChainReport:
    """What was verified and whether it held; `first_break` names the entry at fault."""

    intact: bool
    entries_checked: int
    first_id: int | None = None
    last_id: int | None = None
    head_hash: str | None = None  # entry_hash of the last entry verified: compare with an anchor kept elsewhere
    window_start: datetime | None = None
    window_end: datetime | None = None
    anchor: EntryRef | None = None  # the entry just before the window, the walk's starting point
    first_break: ChainBreak | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "intact": self.intact, "entries_checked": self.entries_checked, "first_id": self.first_id,
            "last_id": self.last_id, "head_hash": self.head_hash,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "anchor": vars(self.anchor) if self.anchor else None,
            "first_break": self.first_break.to_dict() if self.first_break else None,
            "seconds": round(self.seconds, 3), "notes": self.notes,
        }

    def summary(self) -> str:
        span = f"entries id {self.first_id}..{self.last_id}" if self.first_id is not None else "no entries"
        if self.first_break is not None:
            return f"audit chain BROKEN ({self.first_break.kind}): {self.first_break.message}"
        return f"audit chain intact: {self.entries_checked} entries verified ({span}), head {self.head_hash}"


def verify_chain(store_url: str, start: datetime | None = None, end: datetime | None = None) -> ChainReport:
    """Verify the whole chain, or the entries stamped in [start, end) anchored on the one before."""
    started = time.perf_counter()
    with open_chain(store_url) as store:
        report = _verify(store, _utc(start), _utc(end))
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def open_chain(store_url: str) -> Iterator["StoreChain"]:
    """The audit table as chain rows, all reads in one snapshot (REPEATABLE READ on PostgreSQL), so
    entries appended meanwhile cannot confuse a walk; nothing is written."""
    engine = open_store(store_url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield StoreChain(connection)
        finally:
            connection.rollback()


def _verify(store: "StoreChain", start: datetime | None, end: datetime | None) -> ChainReport:
    report = ChainReport(intact=True, entries_checked=0, window_start=start, window_end=end)
    low, high = store.window_ids(start, end)
    if (start or end) and low is None:
        report.notes.append("no entries in the window")
        return report
    expected, walk_from = GENESIS_HASH, low
    if low is not None:
        anchor_rows = store.rows_before(low, 1)
        if anchor_rows:
            anchor = anchor_rows[0]
            report.anchor = EntryRef.of(anchor)
            expected, walk_from = anchor[PREV_HASH], anchor[ID]
            report.notes.append(f"window anchored on {report.anchor}, the entry just before it: its hash is "
                                "checked and the window links to it; entries before it are not verified")
    result = store.walk(walk_from, high, expected)
    checked = result.checked - (1 if report.anchor and result.checked else 0)
    report.entries_checked = max(checked, 0)
    report.head_hash = result.head if result.checked else None
    report.first_id = low if low is not None else store.first_id()
    report.last_id = result.last_id  # the last entry that held
    if result.broken is not None:
        report.intact = False
        report.first_break = classify_break(store, result.broken, result.computed, result.expected_link)
    return report


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class StoreChain:
    """The audit table seen as chain rows: a stream for the walk, point look-ups for classify_break."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.columns = _COLUMNS.format(timestamp=_PG_TIMESTAMP if self.postgres else '"timestamp"')

    def window_ids(self, start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
        """The id range of the entries stamped in [start, end); (None, None) means all of them."""
        if start is None and end is None:
            return None, None
        conditions = []
        if start is not None:
            conditions.append(_TABLE.c.timestamp >= start)
        if end is not None:
            conditions.append(_TABLE.c.timestamp < end)
        low, high = self.connection.execute(
            select(func.min(_TABLE.c.id), func.max(_TABLE.c.id)).where(*conditions)).one()
        return low, high

    def first_id(self) -> int | None:
        return self.connection.execute(select(func.min(_TABLE.c.id))).scalar()

    def last_id(self) -> int | None:
        return self.connection.execute(select(func.max(_TABLE.c.id))).scalar()

    def hashes_at(self, ids: list[int]) -> dict[int, str]:
        """entry_hash by id for the entries that exist among `ids`."""
        found: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start:start + 500]
            found.update(self.connection.execute(
                select(_TABLE.c.id, _TABLE.c.entry_hash).where(_TABLE.c.id.in_(batch))).all())
        return found

    def walk(self, low: int | None, high: int | None, expected_link: str) -> WalkResult:
        """The chain walk over low <= id <= high; on PostgreSQL, long ranges in parallel slices."""
        if self.postgres and (os.cpu_count() or 1) > 1:
            low = low if low is not None else self.first_id()
            high = high if high is not None else self.last_id()
            if low is not None and high - low + 1 >= PARALLEL_MIN_ROWS:
                return self._parallel_walk(low, high, expected_link)
        return walk(self.rows(low, high), expected_link)

    def _parallel_walk(self, low: int, high: int, expected_link: str) -> WalkResult:
        """Slices of the id range walked by worker processes in this transaction's snapshot, then
        joined in order: the first slice that breaks holds the chain's first break."""
        workers = min(os.cpu_count() or 1, MAX_WORKERS)
        bounds = [low - 1 + (high - low + 1) * k // workers for k in range(workers + 1)]
        links = [expected_link] + [self.connection.execute(
            text("SELECT entry_hash FROM audit_entry WHERE id <= :b ORDER BY id DESC LIMIT 1"), {"b": b}).scalar()
            for b in bounds[1:-1]]
        snapshot = self.connection.execute(text("SELECT pg_export_snapshot()")).scalar()
        dsn = self.connection.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        select_sql = f"SELECT {self.columns} FROM audit_entry WHERE id >= %(low)s AND id <= %(high)s ORDER BY id"
        jobs = [dict(dsn=dsn, snapshot=snapshot, select_sql=select_sql, low=bounds[k] + 1, high=bounds[k + 1],
                     expected_link=links[k]) for k in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(_run_slice, jobs))
        checked, head, last_id = 0, expected_link, None
        for result in results:
            checked += result.checked
            if result.broken is not None:
                return WalkResult(checked, result.head, result.last_id or last_id, result.broken, result.computed,
                                  result.expected_link)
            head, last_id = result.head, result.last_id or last_id
        return WalkResult(checked, head, last_id, None, None, None)

    def rows(self, low: int | None, high: int | None, matching: dict[str, str] | None = None) -> Iterator[Row]:
        """Rows with low <= id <= high (either open) and the column values in `matching`, in id
        order, streamed."""
        matching = matching or {}
        conditions = [low is not None and "id >= %(low)s", high is not None and "id <= %(high)s",
                      *(f'"{_TABLE.c[column].name}" = %(m_{column})s' for column in matching)]
        where = " AND ".join(c for c in conditions if c) or "TRUE"
        sql = f"SELECT {self.columns} FROM audit_entry WHERE {where} ORDER BY id"
        params = {"low": low, "high": high, **{f"m_{column}": value for column, value in matching.items()}}
        if self.postgres:
            return self._pg_stream(sql, params)
        return self._sqlite_stream(re.sub(r"%\((\w+)\)s", r":\1", sql), params)

    def _pg_stream(self, sql: str, params: dict) -> Iterator[Row]:
        raw = self.connection.connection.dbapi_connection
        with raw.cursor(name="tradeops_audit_verify") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(FETCH_ROWS):
                yield from batch

    def _sqlite_stream(self, sql: str, params: dict) -> Iterator[Row]:
        result = self.connection.execute(text(sql), params)
        for row in result:
            yield _sqlite_row(row)

    def _query(self, where: str, params: dict, order: str = "id", limit: int = 1) -> list[Row]:
        sql = f"SELECT {self.columns} FROM audit_entry WHERE {where} ORDER BY {order} LIMIT {int(limit)}"
        rows = self.connection.execute(text(sql), params).all()
        return [tuple(r) if self.postgres else _sqlite_row(r) for r in rows]

    def row_at(self, entry_id: int) -> Row | None:
        rows = self._query("id = :id", {"id": entry_id})
        return rows[0] if rows else None

    def count_after(self, entry_id: int) -> int:
        return self.connection.execute(select(func.count()).where(_TABLE.c.id > entry_id)).scalar()

    # ChainLookup
    def rows_before(self, entry_id: int, count: int) -> list[Row]:
        return self._query("id < :id", {"id": entry_id}, "id DESC", count)

    def row_after(self, entry_id: int) -> Row | None:
        rows = self._query("id > :id", {"id": entry_id})
        return rows[0] if rows else None

    def row_with_hash(self, entry_hash: str) -> Row | None:
        rows = self._query("entry_hash = :h", {"h": entry_hash})
        return rows[0] if rows else None

    def rows_linking_to(self, entry_hash: str) -> list[Row]:
        return self._query("prev_hash = :h", {"h": entry_hash}, limit=3)


def _run_slice(job: dict) -> WalkResult:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-m", "tasks.audit.chunk_walk"], input=json.dumps(job),
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"audit chain walk of entries id {job['low']}..{job['high']} failed: "
                           f"{done.stderr.strip()[-800:]}")
    return WalkResult(**json.loads(done.stdout))


def _sqlite_row(row: Row) -> Row:
    """SQLite keeps the timestamp as text in UTC ('2026-01-02 03:04:05.000000'): put it in canonical form."""
    values = list(row)
    moment = datetime.fromisoformat(values[TIMESTAMP])
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    values[TIMESTAMP] = iso_timestamp(moment)
    return values
