"""Log compression: gzip, compressed on every core, with an index of time ranges inside.

The file is cut into members of about 1 MiB at line boundaries (a cut never splits a line from
its continuation lines) and each member is one gzip stream; a file of concatenated gzip members
is a valid gzip file (RFC 1952), so `gzip -d`/`zcat` read it as usual. Members are compressed
in parallel (zlib releases the GIL), which is how we beat `gzip -6` at the same level, and each
member's offset, length and time range go into the index, so retrieval reads only the members
of the asked range. Every member is decompressed again right after compression and compared
with its input, and before the archive gets its final name its bytes on disk are hashed and
compared with the bytes that were checked: the original is deleted only after both.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Iterator

from tradeops.files import atomic_output, sha256_file
from tasks.logs.timestamps import chunk_time_range, line_time

COMPRESSION = {"level": 6, "member_bytes": 1024 * 1024}  # gzip -6, the runbook's gzip at its default level
GZIP_WBITS = 31  # zlib with a gzip header and trailer
_NEXT_STAMPED_LINE = re.compile(rb"\n(?=\d{4}-\d\d-\d\d[T ]\d\d:\d\d)")


@dataclass
class Member:
    offset: int
    length: int
    lines: int
    first: str | None  # ISO times, second resolution (first floored, last rounded up)
    last: str | None
    tail: str | None = None  # exact time of the last stamped line: the time in force after this member

    def overlaps(self, start: datetime, end: datetime) -> bool:
        if self.first is None:
            return False
        return datetime.fromisoformat(self.first) < end and datetime.fromisoformat(self.last) > start


@dataclass
class ArchiveInfo:
    original_bytes: int = 0
    archive_bytes: int = 0
    original_sha256: str = ""
    archive_sha256: str = ""
    lines: int = 0
    members: list[Member] = field(default_factory=list)

    @property
    def first_at(self) -> datetime | None:
        firsts = [m.first for m in self.members if m.first]
        return datetime.fromisoformat(min(firsts)) if firsts else None

    @property
    def last_at(self) -> datetime | None:
        lasts = [m.last for m in self.members if m.last]
        return datetime.fromisoformat(max(lasts)) if lasts else None

    def members_as_dicts(self) -> list[dict]:
        return [asdict(m) for m in self.members]


class ArchiveMismatch(Exception):
    """The archive does not decompress to the original bytes: the original is kept."""


def member_chunks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """Pieces of about `size` bytes, cut before a timestamped line (else after any newline)."""
    pending, eof = b"", False
    while True:
        while not eof and len(pending) < 2 * size:
            block = handle.read(size)
            eof = not block
            pending += block
        if not pending:
            return
        if len(pending) <= size:
            yield pending
            return
        match = _NEXT_STAMPED_LINE.search(pending, size - 1)
        cut = match.start() + 1 if match else pending.find(b"\n", size - 1) + 1 or min(len(pending), 2 * size)
        yield pending[:cut]
        pending = pending[cut:]


def _compress_member(chunk: bytes, level: int) -> tuple[bytes, int, tuple | None, bool, datetime | None]:
    """One gzip member, checked by decompressing it; its line count, time range, whether it starts
    with a stamped line, and the time of its last stamped line."""
    data = zlib.compress(chunk, level, GZIP_WBITS)
    if zlib.decompress(data, GZIP_WBITS) != chunk:
        raise ArchiveMismatch("a compressed member does not decompress to its input")
    count = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") or not chunk else 1)
    span = chunk_time_range(chunk)
    tail = _last_stamp(chunk) if span else None
    return data, count, span, line_time(chunk[:64]) is not None, tail


def _last_stamp(chunk: bytes) -> datetime | None:
    """The time of the last stamped line, searching back from the end."""
    end = len(chunk)
    while end > 0:
        start = chunk.rfind(b"\n", 0, end - 1) + 1
        stamped = line_time(chunk[start:start + 64])
        if stamped is not None:
            return stamped
        end = start
    return None


def compress_log(source: Path, destination: Path, level: int | None = None, member_bytes: int | None = None,
                 workers: int | None = None) -> ArchiveInfo:
    """Write `destination` (atomically) as multi-member gzip of `source`, verified; return its index."""
    level = COMPRESSION["level"] if level is None else level
    member_bytes = member_bytes or COMPRESSION["member_bytes"]
    workers = workers or os.cpu_count() or 1
    info = ArchiveInfo()
    original, compressed = hashlib.sha256(), hashlib.sha256()
    with open(source, "rb") as src, atomic_output(destination) as out, ThreadPoolExecutor(workers) as pool:
        in_flight = []
        carried: list[datetime | None] = [None]  # the time in force at the end of the previous member

        def drain(keep: int) -> None:
            while len(in_flight) > keep:
                chunk, future = in_flight.pop(0)
                data, lines, span, starts_stamped, tail = future.result()
                original.update(chunk)
                compressed.update(data)
                out.write(data)
                previous = carried[0]
                if not starts_stamped and previous is not None:  # leading lines belong to `previous`
                    low = previous.replace(microsecond=0)
                    span = (min(span[0], low), max(span[1], low + timedelta(seconds=1))) if span else \
                        (low, low + timedelta(seconds=1))
                carried[0] = tail or previous
                first, last = (t.isoformat() for t in span) if span else (None, None)
                info.members.append(Member(info.archive_bytes, len(data), lines, first, last,
                                           carried[0].isoformat() if carried[0] else None))
                info.archive_bytes += len(data)
                info.original_bytes += len(chunk)
                info.lines += lines

        for chunk in member_chunks(src, member_bytes):
            in_flight.append((chunk, pool.submit(_compress_member, chunk, level)))
            drain(2 * workers)
        drain(0)
        out.flush()
        os.fsync(out.fileno())
        info.original_sha256, info.archive_sha256 = original.hexdigest(), compressed.hexdigest()
        if sha256_file(Path(out.name)) != info.archive_sha256:
            raise ArchiveMismatch(f"{destination}: the bytes on disk are not the bytes written")
    return info


def read_member(handle: BinaryIO, member: Member) -> bytes:
    handle.seek(member.offset)
    return zlib.decompress(handle.read(member.length), GZIP_WBITS)


def verify_members(archive: Path, info: ArchiveInfo) -> None:
    """Decompress every member from disk: the bytes must be the original's, in order."""
    digest, size = hashlib.sha256(), 0
    with open(archive, "rb") as handle:
        for member in info.members:
            data = read_member(handle, member)
            digest.update(data)
            size += len(data)
    if (digest.hexdigest(), size) != (info.original_sha256, info.original_bytes):
        raise ArchiveMismatch(f"{archive} does not decompress to the original ({size} bytes read back, "
                              f"{info.original_bytes} expected)")
