"""`tradeops logs retrieve`: the archived lines of one log type in a time range.

The index picks the archives whose time range meets the asked one, and inside each archive the
gzip members that do; only those members are read (from the local archive, or with HTTP range
requests from offsite once the local copy has aged out). Lines are then kept by their own
timestamp; a line without one goes with the timestamped line before it, even across members.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tradeops.files import atomic_output
from tasks.logs.compression import GZIP_WBITS, Member
from tasks.logs.index import archives_overlapping, members_of
from tasks.logs.timestamps import line_time
from tradeops.store import LogArchive


class RetrievalError(Exception):
    """An archive the index lists cannot be read: named, with what went wrong."""


@dataclass
class Retrieval:
    output: str
    lines: int = 0
    archives_read: list[str] = field(default_factory=list)
    members_read: int = 0
    members_skipped: int = 0


def lines_in_range(data: bytes, start: datetime, end: datetime, current: datetime | None) -> tuple[list[bytes], datetime | None]:
    """The lines of `data` stamped in [start, end); `current` is the time in force at its start."""
    kept = []
    for line in data.splitlines(keepends=True):
        stamped = line_time(line)
        if stamped is not None:
            current = stamped
        if current is not None and start <= current < end:
            kept.append(line)
    return kept, current


def retrieve_logs(store_url: str, environment: str, log_type: str, start: datetime, end: datetime, out_dir: Path,
                  reader_for, target: str | None = None) -> Retrieval:
    """Write the lines of [start, end) to `out_dir/<type>_<start>_<end>.log`, oldest archive first.

    `reader_for(row)` returns a function `(offset, length) -> bytes` over that archive's bytes."""
    name = f"{log_type}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.log"
    result = Retrieval(output=str(out_dir / name))
    with atomic_output(out_dir / name) as out:
        for row in archives_overlapping(store_url, environment, log_type, start, end, target):
            read = reader_for(row)
            result.archives_read.append(row.archive_name)
            current = None  # lines before a file's first timestamp are in no range
            for member in members_of(row):
                if not member.overlaps(start, end):
                    result.members_skipped += 1
                    current = datetime.fromisoformat(member.tail) if member.tail else current
                    continue
                data = _decompress(row, member, read(member.offset, member.length))
                result.members_read += 1
                kept, current = lines_in_range(data, start, end, current)
                out.writelines(kept)
                result.lines += len(kept)
    return result


def _decompress(row: LogArchive, member: Member, data: bytes) -> bytes:
    try:
        return zlib.decompress(data, GZIP_WBITS)
    except zlib.error as exc:
        raise RetrievalError(f"{row.archive_name}: member at byte {member.offset} is corrupt ({exc})") from None
