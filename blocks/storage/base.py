"""The protocol every offsite storage backend implements, and the settings it is built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlparse

# How S3 (and an S3-compatible server) says "no such object".
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class StorageSettings:
    """What a backend needs from the OffsiteStorage block: block names, never secret values."""

    url: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    aws_credentials_block: str | None = None

    @property
    def scheme(self) -> str:
        return urlparse(self.url).scheme

    def describe(self) -> str:
        return self.url + (f" via {self.endpoint_url}" if self.endpoint_url else "")


@runtime_checkable
class OffsiteBackend(Protocol):
    """Keys are relative to the storage's root (a folder, or a bucket and prefix)."""

    def write_bytes(self, key: str, data: bytes) -> str: ...

    def read_bytes(self, key: str) -> bytes: ...

    def upload_file(self, path: Path, key: str, sha256: str | None = None,
                    retain_until: datetime | None = None) -> str: ...

    def download_file(self, key: str, path: Path) -> Path: ...

    def read_range(self, key: str, offset: int, length: int) -> bytes: ...

    def size(self, key: str) -> int | None: ...

    def recorded_sha256(self, key: str) -> str | None: ...

    def list_keys(self, prefix: str = "") -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def object_lock_enabled(self) -> bool: ...

    def credentials_source(self) -> str: ...
