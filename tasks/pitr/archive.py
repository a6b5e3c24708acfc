"""The spool's way offsite: every WAL file PostgreSQL spooled is re-hashed, uploaded with its
checksum (size and SHA-256 checked by publish_offsite), and only then removed from the spool.

A spool file whose bytes no longer match the checksum in its name is never uploaded: it stays
in the spool, renamed `.damaged-<name>`, and the run fails naming it (the segment is lost unless
pg_wal still has it). The first upload records the cluster (archive.json: system identifier,
segment size); a spool file of another segment size under that system identifier is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from blocks import OffsiteStorage
from tasks.pitr.layout import ARCHIVE_INFO, archive_prefix, wal_key
from tradeops.wal.names import WalError, long_header, parse_archived, wal_kind

STALE_TEMPORARY_SECONDS = 3600  # a push killed mid-write leaves `.<name>.tmp-<pid>`; gone after an hour

Upload = Callable[[OffsiteStorage, Path, str, str, int], str]


@dataclass(frozen=True)
class SpoolFile:
    system_identifier: int
    name: str
    sha256: str
    path: Path
    size: int
    spooled_at: float  # mtime: when archive_command finished it


@dataclass
class DrainResult:
    target: str
    uploaded: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    left: list[SpoolFile] = field(default_factory=list)  # still in the spool after this run
    systems: set[int] = field(default_factory=set)

    def oldest_left_age(self, now: float) -> float | None:
        return max((now - f.spooled_at for f in self.left), default=None)


def spool_files(spool: Path) -> list[SpoolFile]:
    """What archive_command left in the spool, in WAL order (history files first)."""
    found = []
    if not spool.is_dir():
        return found
    for folder in spool.iterdir():
        if not (folder.is_dir() and folder.name.isdigit()):
            continue
        for path in folder.iterdir():
            parsed = parse_archived(path.name)
            if parsed is None:
                continue
            stat = path.stat()
            found.append(SpoolFile(int(folder.name), parsed[0], parsed[1], path, stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda f: (f.system_identifier, wal_kind(f.name) != "history", f.name))


def remove_stale_temporaries(spool: Path, now: float) -> list[str]:
    removed = []
    for path in spool.glob("*/.*.tmp-*"):
        if now - path.stat().st_mtime > STALE_TEMPORARY_SECONDS:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def archive_info(storage: OffsiteStorage, prefix: str) -> dict | None:
    key = f"{prefix}/{ARCHIVE_INFO}"
    if storage.size(key) is None:
        return None
    return json.loads(storage.read_bytes(key))


def record_cluster(storage: OffsiteStorage, prefix: str, known: dict | None, system_identifier: int,
                   data: bytes, name: str) -> dict:
    """archive.json from the first segment uploaded; later segments must agree with it."""
    header = long_header(data, name)
    info = {"system_identifier": system_identifier, "wal_segment_size": header.segment_size,
            "wal_page_magic": header.magic, "wal_block_size": header.block_size}
    if known is None:
        storage.write_bytes(f"{prefix}/{ARCHIVE_INFO}", json.dumps(info, indent=2, sort_keys=True).encode())
        return info
    if known["wal_segment_size"] != header.segment_size or known["system_identifier"] != system_identifier:
        raise WalError(f"{name}: segment size {header.segment_size} of system {system_identifier}, but the archive "
                       f"holds system {known['system_identifier']} with {known['wal_segment_size']}-byte segments")
    return known


def drain_spool(storage: OffsiteStorage, environment: str, target: str, spool: Path, upload: Upload) -> DrainResult:
    """Move every spooled WAL file offsite, oldest first; a file that fails stays for the next run."""
    result = DrainResult(target)
    started = time.monotonic()
    if not spool.is_dir():
        result.failures.append(f"spool {spool} does not exist on this host: run the wal-archive flow where "
                               "archive_command writes (the database host), or mount the spool here")
        return result
    remove_stale_temporaries(spool, time.time())
    infos: dict[int, dict | None] = {}
    for item in spool_files(spool):
        prefix = archive_prefix(environment, target, item.system_identifier)
        result.systems.add(item.system_identifier)
        try:
            data = item.path.read_bytes()
            actual = hashlib.sha256(data).hexdigest()
            if actual != item.sha256:
                damaged = item.path.with_name(f".damaged-{item.path.name}")
                os.replace(item.path, damaged)
                raise WalError(f"{item.name}: the spool copy hashes to {actual}, not {item.sha256} as when it was "
                               f"spooled; moved aside to {damaged.name}, not uploaded")
            if wal_kind(item.name) in ("segment", "partial"):
                if item.system_identifier not in infos:
                    infos[item.system_identifier] = archive_info(storage, prefix)
                infos[item.system_identifier] = record_cluster(storage, prefix, infos[item.system_identifier],
                                                               item.system_identifier, data, item.name)
            upload(storage, item.path, wal_key(prefix, item.path.name), item.sha256, item.size)
        except Exception as exc:  # noqa: BLE001 - the file stays spooled; the run names it and goes on
            result.failures.append(f"{item.name}: {exc}")
            if item.path.exists():
                result.left.append(item)
            continue
        item.path.unlink()
        result.uploaded.append(item.name)
        result.bytes += item.size
    result.seconds = time.monotonic() - started
    return result

