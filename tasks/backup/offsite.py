"""Offsite copies: upload, then prove the copy (size and SHA-256) before the catalog records it.

An upload to a key that already holds different content fails instead of overwriting; the same
content already there is accepted (a re-run after a crash). Transient errors are retried with
backoff by the task wrapper.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from blocks import OffsiteStorage
from tasks.files import sha256_file


class OffsiteError(Exception):
    """The offsite copy is missing, different, or could not be made."""


class OffsiteConflict(OffsiteError):
    """The key already holds different content: never overwritten."""


def publish_offsite(storage: OffsiteStorage, path: Path, key: str, sha256: str, size: int,
                    retain_until: datetime | None = None) -> str:
    """Upload and check one file; `retain_until` asks for Object Lock (compliance-class objects)."""
    existing = storage.size(key)
    if existing is not None:
        if existing == size and storage.recorded_sha256(key) == sha256:
            return key
        raise OffsiteConflict(f"{storage.describe()} already holds different content at {key}; not overwritten")
    storage.upload_file(path, key, sha256=sha256, retain_until=retain_until)
    check_offsite_copy(storage, key, sha256, size, download=False)
    return key


def check_offsite_copy(storage: OffsiteStorage, key: str, sha256: str, size: int, download: bool) -> None:
    """Size and recorded checksum; with `download`, the bytes themselves are read back and hashed."""
    remote_size = storage.size(key)
    if remote_size is None:
        raise OffsiteError(f"offsite object {key} is missing")
    if remote_size != size:
        raise OffsiteError(f"offsite object {key} has {remote_size} bytes, expected {size}")
    if download:
        with tempfile.TemporaryDirectory() as tmp:
            actual = sha256_file(storage.download_file(key, Path(tmp) / "object"))
    else:
        actual = storage.recorded_sha256(key)
    if actual != sha256:
        raise OffsiteError(f"offsite object {key} has SHA-256 {actual}, expected {sha256}")
