"""WAL file names and headers as PostgreSQL 15 writes them (src/include/access/xlog_internal.h,
xlog.h, pg_control.h), and the archive's names: `<file>-<sha256>`, the checksum in the name as
pgBackRest does, so every copy carries what it must hash to, wherever it is."""

from __future__ import annotations

import re
import struct
from collections import namedtuple
from pathlib import Path

SEGMENT_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
PARTIAL_NAME = re.compile(r"^[0-9A-F]{24}\.partial$")  # the last segment of a timeline a promotion left
BACKUP_NAME = re.compile(r"^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$")  # a base backup's history file
HISTORY_NAME = re.compile(r"^([0-9A-F]{8})\.history$")  # a timeline's history
ARCHIVED_NAME = re.compile(r"^(?P<name>[0-9A-F]{8}(?:[0-9A-F]{16}(?:\.partial|\.[0-9A-F]{8}\.backup)?|\.history))"
                           r"-(?P<sha256>[0-9a-f]{64})$")

# XLogLongPageHeaderData: magic, info, timeline, page address, remaining length, (padding to 24),
# system identifier, segment size, block size. The first page of every segment carries it.
LONG_HEADER = struct.Struct("=HHIQI4xQII")
XLP_LONG_HEADER = 0x0002
PG15_WAL_MAGIC = 0xD110
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024


class WalError(Exception):
    """A WAL file that must not be archived or restored as it is; the message says why."""


def wal_kind(name: str) -> str | None:
    """segment, partial, backup, history, or None for a name PostgreSQL never archives."""
    if SEGMENT_NAME.match(name):
        return "segment"
    if PARTIAL_NAME.match(name):
        return "partial"
    if BACKUP_NAME.match(name):
        return "backup"
    if HISTORY_NAME.match(name):
        return "history"
    return None


def segments_per_xlogid(segment_size: int) -> int:
    return 0x100000000 // segment_size


class Segment(namedtuple("Segment", "timeline number")):  # not a dataclass: archive_command starts faster
    """A segment's place in the WAL: its timeline and its number counted from LSN 0."""

    __slots__ = ()

    def name(self, segment_size: int) -> str:
        per = segments_per_xlogid(segment_size)
        return f"{self.timeline:08X}{self.number // per:08X}{self.number % per:08X}"

    def start_lsn(self, segment_size: int) -> int:
        return self.number * segment_size


def parse_segment(name: str, segment_size: int) -> Segment | None:
    """The segment a file name (a segment, or its .partial / .backup) stands for."""
    match = SEGMENT_NAME.match(name[:24])
    if not match or wal_kind(name) not in ("segment", "partial", "backup"):
        return None
    timeline, log, seg = (int(part, 16) for part in match.groups())
    return Segment(timeline, log * segments_per_xlogid(segment_size) + seg)


def segment_of_lsn(timeline: int, lsn: int, segment_size: int) -> Segment:
    return Segment(timeline, lsn // segment_size)


def parse_lsn(text: str) -> int:
    """`0/2000028` -> 33554472."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def archived_name(name: str, sha256: str) -> str:
    return f"{name}-{sha256}"


def parse_archived(filename: str) -> tuple[str, str] | None:
    """`<wal file>-<sha256>` -> (wal file, sha256); None for anything else."""
    match = ARCHIVED_NAME.match(filename)
    return (match["name"], match["sha256"]) if match else None


LongHeader = namedtuple("LongHeader", "magic timeline page_address system_identifier segment_size block_size")


def long_header(data: bytes, name: str) -> LongHeader:
    """The first page header of a segment; WalError when it is not one."""
    if len(data) < LONG_HEADER.size:
        raise WalError(f"{name}: {len(data)} bytes, too short for a WAL segment")
    magic, info, timeline, address, _rem, sysid, seg_size, blcksz = LONG_HEADER.unpack_from(data)
    if not info & XLP_LONG_HEADER or seg_size == 0 or seg_size & (seg_size - 1):
        raise WalError(f"{name}: no WAL segment header at its start (page info {info:#06x}, segment size "
                       f"{seg_size}); not a WAL segment, or a damaged one")
    return LongHeader(magic, timeline, address, sysid, seg_size, blcksz)


def check_segment(name: str, data: bytes, system_identifier: int | None) -> LongHeader:
    """A segment (or .partial) file is what its name says: a complete segment of this cluster
    (the system identifier of pg_control) starting at the LSN its name gives."""
    header = long_header(data, name)
    if system_identifier is not None and header.system_identifier != system_identifier:
        raise WalError(f"{name}: written by the cluster with system identifier {header.system_identifier}, "
                       f"this cluster's is {system_identifier}; not archived under it")
    if len(data) != header.segment_size:
        raise WalError(f"{name}: {len(data)} bytes, its header says segments are {header.segment_size}")
    segment = parse_segment(name, header.segment_size)
    if segment is None or header.page_address != segment.start_lsn(header.segment_size):
        raise WalError(f"{name}: its first page is at {format_lsn(header.page_address)}, not where its name "
                       "puts it; a renamed or damaged file")
    return header


def control_system_identifier(pgdata: Path) -> int:
    """The system identifier, the first field of `global/pg_control`."""
    path = Path(pgdata) / "global" / "pg_control"
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise WalError(f"cannot read {path} for the system identifier: {exc.strerror}; run from the data "
                       "directory (PostgreSQL does) or pass --pgdata") from None
    if len(head) != 8:
        raise WalError(f"{path}: too short to hold a system identifier")
    return struct.unpack("=Q", head)[0]
