"""The restore's side of restore_command: fetch what PostgreSQL asks for from the offsite archive,
check it, and put it in the queue folder `tradeops wal get` reads (tradeops/wal/queue.py).

A thread of the restore process, so the offsite credentials never reach PostgreSQL or its
command lines. It answers each request (`requests/<file>`) with the file, `<file>.missing`, or
`<file>.refused` when the download does not hash to the checksum in its archive name, and keeps
the next few segments of the timeline fetched ahead (pgBackRest's asynchronous archive-get does
the same), dropping those PostgreSQL has moved past.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from blocks import OffsiteStorage
from tradeops.files import sha256_file
from tasks.pitr.gaps import ArchivedFile, wal_inventory
from tradeops.wal.names import Segment, parse_segment, wal_kind
from tradeops.wal.queue import REQUESTS

PREFETCH_SEGMENTS = 4
KEEP_BEHIND = 2  # segments kept after PostgreSQL asked for them, in case it asks again
REFRESH_SECONDS = 30.0  # how often a miss may re-list the archive (segments arrive during a restore)
POLL_SECONDS = 0.02


@dataclass
class FetchStats:
    fetched: list[str] = field(default_factory=list)
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "name: reason"


class WalFetcher(threading.Thread):
    def __init__(self, storage: OffsiteStorage, prefix: str, queue: Path, segment_size: int,
                 prefetch: int = PREFETCH_SEGMENTS):
        super().__init__(name="tradeops-wal-fetcher", daemon=True)
        self.storage, self.prefix, self.queue = storage, prefix, Path(queue)
        self.segment_size, self.prefetch = segment_size, prefetch
        self.stats = FetchStats()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._index: dict[str, ArchivedFile] = {}
        self._listed_at = 0.0
        self._last: Segment | None = None
        (self.queue / REQUESTS).mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)

    def run(self) -> None:
        try:
            self._refresh()
            while not self._stop_event.is_set():
                requests = sorted(os.listdir(self.queue / REQUESTS))
                for name in requests:
                    self._serve(name)
                    (self.queue / REQUESTS / name).unlink(missing_ok=True)
                if not requests and not self._prefetch_one():
                    self._stop_event.wait(POLL_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - the restore reports it; PostgreSQL then times out
            self.error = exc

    def _refresh(self) -> None:
        self._index = wal_inventory(self.storage, self.prefix, self.segment_size).files
        self._listed_at = time.monotonic()

    def _lookup(self, name: str) -> ArchivedFile | None:
        if name not in self._index and time.monotonic() - self._listed_at > REFRESH_SECONDS:
            self._refresh()
        return self._index.get(name)

    def _serve(self, name: str) -> None:
        segment = parse_segment(name, self.segment_size) if wal_kind(name) == "segment" else None
        if segment is not None:
            self._last = segment
            self._drop_behind(segment)
        if (self.queue / name).exists():
            return
        entry = self._lookup(name)
        if entry is None:
            self._answer(f"{name}.missing", "")
            self.stats.missing.append(name)
            return
        self._fetch(entry)

    def _fetch(self, entry: ArchivedFile) -> bool:
        tmp = self.queue / f".{entry.name}.part"
        self.storage.download_file(entry.key, tmp)
        actual = sha256_file(tmp)
        if actual != entry.sha256:
            tmp.unlink()
            reason = (f"offsite copy {entry.key} hashes to {actual}, its archive name says {entry.sha256}: "
                      "damaged, not replayed")
            self._answer(f"{entry.name}.refused", reason)
            self.stats.refused.append(f"{entry.name}: {reason}")
            return False
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.queue / entry.name)
        self.stats.fetched.append(entry.name)
        self.stats.bytes += tmp.parent.joinpath(entry.name).stat().st_size
        return True

    def _answer(self, filename: str, text: str) -> None:
        tmp = self.queue / f".{filename}.part"
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.queue / filename)

    def _prefetch_one(self) -> bool:
        """Fetch the first of the next few segments after the last one asked for; False when
        there is nothing to do."""
        if self._last is None:
            return False
        for step in range(1, self.prefetch + 1):
            name = Segment(self._last.timeline, self._last.number + step).name(self.segment_size)
            if (self.queue / name).exists() or (self.queue / f"{name}.refused").exists():
                continue
            entry = self._index.get(name)
            if entry is None:
                return False
            self._fetch(entry)
            return True
        return False

    def _drop_behind(self, segment: Segment) -> None:
        for path in self.queue.iterdir():
            other = parse_segment(path.name, self.segment_size) if wal_kind(path.name) == "segment" else None
            if other is not None and other.timeline == segment.timeline \
                    and other.number < segment.number - KEEP_BEHIND:
                path.unlink(missing_ok=True)
