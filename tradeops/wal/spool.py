"""`archive_command`: copy one WAL file into the local spool, checked and durable, or fail.

The spool holds `<spool>/<system identifier>/<file>-<sha256>`: written under a hidden temporary
name, fsynced, renamed, the folder fsynced, so a file in the spool is complete and its name says
what it must hash to. PostgreSQL recycles a segment once this returns 0, so anything short of
that raises and the command exits non-zero: PostgreSQL keeps the segment and retries.

The same file pushed again (PostgreSQL retries after a crash) is accepted when its content is the
same; different content under a name already spooled is refused, never overwritten (pgBackRest
does the same: it means two clusters or a damaged file). Segments are checked against the
cluster's system identifier and the LSN their name gives before they are spooled.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from collections import namedtuple
from pathlib import Path

from tradeops.wal.names import WalError, archived_name, check_segment, control_system_identifier, parse_archived, wal_kind


# `already`: the same content was in the spool already (PostgreSQL retrying after a crash)
Spooled = namedtuple("Spooled", "name path sha256 size already")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def system_folder(spool: Path, system_identifier: int) -> Path:
    """The spool's folder for one cluster; made with the spool's own mode, so a drain running as
    another user of the spool's group can read and remove what PostgreSQL (umask 077) writes."""
    folder = spool / str(system_identifier)
    if not folder.is_dir():
        if not spool.is_dir():
            raise WalError(f"spool {spool} does not exist: create it, owned by the cluster owner")
        folder.mkdir(exist_ok=True)
        os.chmod(folder, stat.S_IMODE(spool.stat().st_mode))
    return folder


def file_mode(folder: Path) -> int:
    return 0o640 if folder.stat().st_mode & stat.S_IRGRP else 0o600


def spooled_copies(folder: Path, name: str) -> list[tuple[Path, str]]:
    """Files already in the spool for the WAL file `name`, with the checksum their name gives."""
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(name + "-"):
                parsed = parse_archived(entry.name)
                if parsed and parsed[0] == name:
                    found.append((Path(entry.path), parsed[1]))
    return found


def push(source: Path, spool: Path, pgdata: Path) -> Spooled:
    """Spool one WAL file PostgreSQL hands to archive_command (`%p`, relative to the data dir)."""
    source = Path(source)
    name = source.name
    kind = wal_kind(name)
    if kind is None:
        raise WalError(f"{name}: not a WAL file name PostgreSQL archives")
    system_identifier = control_system_identifier(pgdata)
    try:
        fd = os.open(source, os.O_RDONLY)
    except OSError as exc:
        raise WalError(f"cannot read {source}: {exc.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        # mapped, not read: hashed and checked in place, then copied by the kernel (copy_file_range)
        data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size else b""
        try:
            if kind in ("segment", "partial"):
                check_segment(name, data, system_identifier)
            digest = hashlib.sha256(data).hexdigest()
        finally:
            if size:
                data.close()
        return _spool(fd, size, name, digest, system_folder(Path(spool), system_identifier))
    finally:
        os.close(fd)


def _spool(source_fd: int, size: int, name: str, digest: str, folder: Path) -> Spooled:
    for path, sha256 in spooled_copies(folder, name):
        if sha256 == digest:
            return Spooled(name, path, digest, size, already=True)
        raise WalError(f"{name}: the spool already holds it with SHA-256 {sha256}, this copy hashes to {digest}; "
                       "refusing to overwrite (two clusters archiving into one spool, or a damaged file)")
    final = folder / archived_name(name, digest)
    tmp = folder / f".{final.name}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode(folder))
        try:
            copy_all(source_fd, fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(folder)
    except OSError as exc:
        raise WalError(f"cannot write {final}: {exc.strerror}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return Spooled(name, final, digest, size, already=False)


def copy_all(source_fd: int, target_fd: int, size: int) -> None:
    """`size` bytes from the start of one file to another: in the kernel where it can, else read/write."""
    offset = 0
    try:
        while offset < size:
            copied = os.copy_file_range(source_fd, target_fd, size - offset, offset)
            if copied == 0:
                raise WalError(f"the source ended at byte {offset} of {size} while being copied")
            offset += copied
        return
    except OSError:  # a filesystem pair without copy_file_range: plain reads and writes from there
        pass
    os.lseek(target_fd, offset, os.SEEK_SET)
    while offset < size:
        chunk = os.pread(source_fd, min(1 << 20, size - offset), offset)
        if not chunk:
            raise WalError(f"the source ended at byte {offset} of {size} while being copied")
        view = memoryview(chunk)
        while view:
            view = view[os.write(target_fd, view):]
        offset += len(chunk)
