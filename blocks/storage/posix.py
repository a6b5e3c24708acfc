"""A local folder as offsite storage (`file:///absolute/folder`): every write is atomic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from blocks.storage.base import StorageSettings
from tradeops.files import atomic_copy, atomic_write_bytes, sha256_file


@dataclass
class PosixStorage:
    root: Path

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> "PosixStorage":
        return cls(Path(urlparse(settings.url).path))

    def path(self, key: str) -> Path:
        return self.root / key

    def write_bytes(self, key: str, data: bytes) -> str:
        atomic_write_bytes(self.path(key), data)
        return key

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def upload_file(self, path: Path, key: str, sha256: str | None = None,
                    retain_until: datetime | None = None) -> str:
        """A folder keeps no metadata and has no Object Lock: the checksum is computed when asked."""
        atomic_copy(path, self.path(key))
        return key

    def download_file(self, key: str, path: Path) -> Path:
        atomic_copy(self.path(key), path)
        return path

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        with open(self.path(key), "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def size(self, key: str) -> int | None:
        local = self.path(key)
        return local.stat().st_size if local.is_file() else None

    def recorded_sha256(self, key: str) -> str | None:
        local = self.path(key)
        return sha256_file(local) if local.is_file() else None

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def object_lock_enabled(self) -> bool:
        return False

    def credentials_source(self) -> str:
        return "no credentials (a local folder)"
