"""Configuration and log archives: gzip'd tars written under a temporary name, then renamed."""

from __future__ import annotations

import hashlib
import tarfile
import time
from pathlib import Path

from tasks.backup.postgres import BackupError
from tradeops.files import atomic_output


def tar_paths(paths: list[Path], out_path: Path, newer_than: float | None = None, pattern: str = "*") -> dict:
    """Archive files under `paths` matching `pattern` (and modified after `newer_than`, when given)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BackupError(f"missing: {', '.join(missing)}")
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob(pattern)) if f.is_file()
                   and (newer_than is None or f.stat().st_mtime >= newer_than))
    checksums: dict[str, str] = {}
    with atomic_output(out_path) as handle, tarfile.open(fileobj=handle, mode="w:gz", compresslevel=6,
                                                              dereference=True) as tar:  # a link's content
        for file in files:
            info = tar.gettarinfo(file, arcname=str(file.relative_to(file.anchor)))
            with open(file, "rb") as source:  # hashed as tar reads it: the bytes archived, read once
                reader = _HashingReader(source)
                tar.addfile(info, reader)
            checksums[info.name] = reader.digest.hexdigest()
    return {"files": len(files), "bytes_in": sum(f.stat().st_size for f in files), "file_sha256": checksums}


class _HashingReader:
    def __init__(self, handle):
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def last_day(now: float | None = None) -> float:
    return (now or time.time()) - 24 * 3600
