"""Archiving one rotated log file: compress (verified), index, then delete the original."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tradeops.files import fsync_dir, sha256_file
from tasks.logs.compression import compress_log
from tasks.logs.index import archive_named, record_archive
from tasks.logs.naming import archive_file_name, log_type


def archive_root(data_dir: str, archive_dir: str | None) -> Path:
    """Where a log directory's archives live on this machine."""
    return Path(archive_dir) if archive_dir else Path(data_dir) / "log-archive"


def archive_rotated_file(store_url: str, environment: str, target: str, path: Path, root: Path) -> dict:
    """Compress `path` into `root/<environment>/<target>/<type>/<name>.gz`, record it, remove `path`.

    A file whose archive is already recorded with the same content (a run that stopped between
    archiving and deleting) is only removed. The original stays until the archive is verified."""
    kind = log_type(path.name)
    archive_name = f"{environment}/{target}/{kind}/{archive_file_name(path.name)}"
    existing = archive_named(store_url, archive_name)
    source_sha256 = sha256_file(path) if existing is not None else None  # only a name clash needs it
    n = 1
    while existing is not None:
        if existing.original_sha256 == source_sha256 and (root / archive_name).is_file():
            _remove(path)
            return {"file": path.name, "type": kind, "archive": archive_name, "outcome": "already archived"}
        archive_name = f"{environment}/{target}/{kind}/{archive_file_name(f'{path.stem}.{n}{path.suffix}')}"
        existing, n = archive_named(store_url, archive_name), n + 1
    started = time.monotonic()
    info = compress_log(path, root / archive_name)
    seconds = time.monotonic() - started
    row = record_archive(store_url, environment, target, kind, path.name, archive_name, info)
    _remove(path)
    return {
        "file": path.name, "type": kind, "archive": archive_name, "outcome": "archived", "id": row.id,
        "lines": info.lines, "original_bytes": info.original_bytes, "archive_bytes": info.archive_bytes,
        "members": len(info.members), "seconds": round(seconds, 3),
        "first_at": info.first_at.isoformat() if info.first_at else None,
        "last_at": info.last_at.isoformat() if info.last_at else None,
    }


def _remove(path: Path) -> None:
    os.unlink(path)
    fsync_dir(path.parent)
