"""Log compression, the time-range index and retrieval, on plain files and a SQLite ops store.

Round trips are checked byte for byte, and with the system's own `gzip -d` (an independent
reader); retrieval is compared with a naive filter written here with strptime, and must not
read the members outside the range.
"""

from __future__ import annotations

import gzip
import random
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tasks.logs.compression import compress_log, member_chunks
from tasks.logs.index import record_archive
from tasks.logs.naming import is_rotated, log_type, rotated_name
from tasks.logs.retention import local_copies_to_delete, offsite_copies_to_delete
from tasks.logs.retrieve import retrieve_logs
from tradeops.store import LogArchive
from tradeops.store.engine import upgrade

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def write_log(path: Path, seconds: int, continuation_every: int = 0, jitter: bool = False, offset: str = "Z") -> Path:
    """One line per second from T0, optionally with stack-trace lines and slightly out of order."""
    rng = random.Random(7)
    lines = []
    for i in range(seconds):
        moment = T0 + timedelta(seconds=i, milliseconds=rng.randrange(1000))
        if jitter and i % 50 == 0:
            moment -= timedelta(seconds=3)  # a late writer: out of order by a few seconds
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        if offset != "Z":  # the same instant written in a +02:00 zone
            local = moment + timedelta(hours=2)
            stamp = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
        lines.append(f"{stamp}{offset} INFO trading order filled order_id=ord-{i:08d} qty={rng.randrange(1, 500)}\n")
        if continuation_every and i % continuation_every == 0:
            lines += ["Traceback (most recent call last):\n", f'  File "engine.py", line {i}, in fill\n']
    path.write_text("".join(lines))
    return path


def naive_range(data: bytes, start: datetime, end: datetime) -> bytes:
    """The expected answer, computed independently: parse every line with strptime."""
    kept, current = [], None
    for line in data.decode().splitlines(keepends=True):
        head = line.split(" ", 1)[0]
        try:
            zone = "+0000" if head.endswith("Z") else head[-6:].replace(":", "")
            moment = datetime.strptime(head[:23] + zone, "%Y-%m-%dT%H:%M:%S.%f%z")
            current = moment.astimezone(timezone.utc)
        except ValueError:
            pass
        if current is not None and start <= current < end:
            kept.append(line)
    return "".join(kept).encode()


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(url)
    return url


def local_reader(root: Path):
    def reader_for(row):
        def read(offset: int, length: int) -> bytes:
            with open(root / row.archive_name, "rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        return read
    return reader_for


# -- naming ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kind, rotated", [
    ("trading.log", "trading", False),
    ("trading-2026-10-01.log", "trading", True),
    ("trading-20261123T155100Z.log", "trading", True),
    ("trading.log.1", "trading", True),
    ("app.20261001.log", "app", True),
    ("worker-1.log", "worker-1", False),  # a live log with a number in its name is not rotated
    ("risk_2026-10-01.log", "risk", True),
    ("trading-20261123T155100Z.1.log", "trading", True),  # a second rotation in the same second
])
def test_log_types_and_rotated_names(name, kind, rotated):
    assert (log_type(name), is_rotated(name)) == (kind, rotated)


def test_a_rotated_name_keeps_the_type_and_says_when():
    name = rotated_name("trading.log", datetime(2026, 11, 23, 15, 51, 7, tzinfo=timezone.utc))
    assert name == "trading-20261123T155107Z.log"
    assert (log_type(name), is_rotated(name)) == ("trading", True)


# -- compression -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"",
    b"no newline at the end",
    b"2026-10-01T00:00:00Z a\r\n2026-10-01T00:00:01Z b\r\n",  # CRLF kept as it is
    b"x" * (3 * 65536 + 17),  # one long line without a newline: cut hard, still round-trips
    bytes(range(256)) * 1000,  # binary noise
])
def test_odd_files_round_trip_byte_for_byte(tmp_path, content):
    source = tmp_path / "odd.log"
    source.write_bytes(content)
    info = compress_log(source, tmp_path / "odd.log.gz", member_bytes=65536)
    assert gzip.decompress((tmp_path / "odd.log.gz").read_bytes()) == content
    assert info.original_bytes == len(content)


def test_members_are_cut_before_a_stamped_line_and_gzip_reads_the_whole_file(tmp_path):
    source = write_log(tmp_path / "trading-2026-10-01.log", 30000, continuation_every=7)
    info = compress_log(source, tmp_path / "a.gz", member_bytes=128 * 1024)
    assert len(info.members) > 10
    with open(source, "rb") as handle:
        chunks = list(member_chunks(handle, 128 * 1024))
    assert all(chunk[:4] == b"2026" for chunk in chunks)  # no stack trace is split from its line
    assert b"".join(chunks) == source.read_bytes()
    # the system's gzip reads our multi-member file as one stream
    out = subprocess.run(["gzip", "-dc", str(tmp_path / "a.gz")], capture_output=True, check=True).stdout
    assert out == source.read_bytes()
    assert info.lines == source.read_bytes().count(b"\n")
    assert info.first_at == T0 and info.last_at >= T0 + timedelta(seconds=29999)


def test_compression_matches_gzip_6_ratio(tmp_path):
    source = write_log(tmp_path / "t.log", 40000)
    info = compress_log(source, tmp_path / "t.gz")
    gzip6 = subprocess.run(["gzip", "-6", "-c", str(source)], capture_output=True, check=True).stdout
    assert info.archive_bytes <= len(gzip6) * 1.02  # 1 MiB members cost well under 2%


# -- retrieval -------------------------------------------------------------------------------------

def archive_into(store: str, root: Path, source: Path, member_bytes: int = 64 * 1024) -> LogArchive:
    name = f"env/platform/{log_type(source.name)}/{source.name}.gz"
    info = compress_log(source, root / name, member_bytes=member_bytes)
    return record_archive(store, "env", "platform", log_type(source.name), source.name, name, info)


@pytest.mark.parametrize("jitter, offset", [(False, "Z"), (True, "Z"), (False, "+02:00")])
def test_retrieval_returns_exactly_the_lines_of_the_range(tmp_path, store, jitter, offset):
    root = tmp_path / "archive"
    day1 = write_log(tmp_path / "trading-2026-10-01.log", 20000, continuation_every=11, jitter=jitter, offset=offset)
    row = archive_into(store, root, day1)
    start, end = T0 + timedelta(seconds=7000, milliseconds=250), T0 + timedelta(seconds=7400)
    result = retrieve_logs(store, "env", "trading", start, end, tmp_path / "out", local_reader(root))
    got = Path(result.output).read_bytes()
    assert got == naive_range(day1.read_bytes(), start, end)
    assert got.count(b"order_id=") in range(399, 402)  # 400 seconds of one line each, give or take the edges
    assert result.members_read <= 2 and result.members_skipped >= len(__import__("json").loads(row.members_json)) - 2


def test_retrieval_spans_archives_and_skips_the_others(tmp_path, store):
    root = tmp_path / "archive"
    first = write_log(tmp_path / "trading-2026-10-01.log", 3600)
    archive_into(store, root, first)
    second = tmp_path / "trading-20261001T010000Z.log"  # the next hour, in its own archive
    text = first.read_text().replace("2026-10-01T00:", "2026-10-01T01:")
    second.write_text(text)
    archive_into(store, root, second)
    other = tmp_path / "risk-2026-10-01.log"
    other.write_text(first.read_text().replace("trading", "risk"))
    archive_into(store, root, other)

    start, end = T0 + timedelta(minutes=50), T0 + timedelta(minutes=70)
    result = retrieve_logs(store, "env", "trading", start, end, tmp_path / "out", local_reader(root))
    expected = naive_range(first.read_bytes(), start, end) + naive_range(second.read_bytes(), start, end)
    assert Path(result.output).read_bytes() == expected
    assert len(result.archives_read) == 2  # the risk archive is never opened
    # a range no archive covers opens nothing
    empty = retrieve_logs(store, "env", "trading", T0 - timedelta(days=3), T0 - timedelta(days=2),
                          tmp_path / "out2", local_reader(root))
    assert (empty.archives_read, empty.lines, Path(empty.output).read_bytes()) == ([], 0, b"")


# -- retention -------------------------------------------------------------------------------------

def row(days_old: float, offsite: bool, now: datetime) -> LogArchive:
    return LogArchive(environment="e", target="t", log_type="x", source_name="s", archive_name=f"a{days_old}",
                      original_sha256="0", archive_sha256="0", last_at=now - timedelta(days=days_old),
                      offsite_key="k" if offsite else None)


def test_retention_boundaries_and_the_only_copy_rule():
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    rows = [row(30, True, now), row(30.001, True, now), row(31, False, now), row(365, True, now), row(365.01, True, now)]
    # locally: older than 30 days and copied offsite; the one without an offsite copy stays
    assert [r.archive_name for r in local_copies_to_delete(rows, now, 30, 365, True)] == \
        ["a30.001", "a365", "a365.01"]
    # no offsite storage at all: the local copy is the only one and is kept for the full year
    assert [r.archive_name for r in local_copies_to_delete(rows, now, 30, 365, False)] == ["a365.01"]
    assert [r.archive_name for r in offsite_copies_to_delete(rows, now, 365)] == ["a365.01"]
