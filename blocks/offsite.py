"""Offsite storage: a local folder (`file:///...`) or any S3-compatible bucket (`s3://bucket/prefix`).

The block holds the settings ops edit; the work is done by the backend its URL's scheme selects
(`blocks/storage/`: `posix.PosixStorage` for a folder, `s3.S3Storage` through prefect-aws's
`S3Bucket`). S3 credentials come from an `AwsCredentials` block named in
`aws_credentials_block`, or else from the standard AWS environment variables. Nothing secret is
stored here.

Retries come in two layers: botocore retries a failed request at once ("standard" mode, 3
attempts: throttling, HTTP 5xx, dropped connections), and the upload task is retried by Prefect
`retries` times with exponential backoff from `retry_delay_seconds`, visible as AwaitingRetry
states in the UI. Rejected credentials and a missing bucket are never retried.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, PrivateAttr

from blocks.storage import OffsiteBackend, StorageSettings, backend_for


class OffsiteStorage(Block):
    _block_type_name = "Tradeops Offsite Storage"
    _block_type_slug = "tradeops-offsite-storage"
    _description = "Where backups, reports and audit exports are copied offsite."

    url: str = Field(description="file:///absolute/folder or s3://bucket/prefix")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000")
    region: str = "us-east-1"
    aws_credentials_block: str | None = Field(None, description="Name of an AwsCredentials block.")
    retries: int = Field(3, ge=0, le=20, description="Retries of an upload after a transient error.")
    retry_delay_seconds: float = Field(2.0, gt=0, le=600,
                                       description="Delay before the first retry; doubles with each retry.")

    _backend = PrivateAttr(None)
    _backend_settings = PrivateAttr(None)

    @property
    def settings(self) -> StorageSettings:
        return StorageSettings(url=self.url, endpoint_url=self.endpoint_url, region=self.region,
                               aws_credentials_block=self.aws_credentials_block)

    @property
    def scheme(self) -> str:
        return self.settings.scheme

    @property
    def backend(self) -> OffsiteBackend:
        """The backend for this URL, built once per block instance (and again if the settings change):
        an S3 backend loads its credentials block, an API call."""
        settings = self.settings
        if self._backend is None or self._backend_settings != settings:
            self._backend, self._backend_settings = backend_for(settings), settings
        return self._backend

    def describe(self) -> str:
        return self.settings.describe()

    def credentials_source(self) -> str:
        """Where the credentials come from, for error messages (never the values)."""
        return self.backend.credentials_source()

    # -- operations used by flows: each one the backend's ------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        return self.backend.write_bytes(key, data)

    def read_bytes(self, key: str) -> bytes:
        return self.backend.read_bytes(key)

    def upload_file(self, path: Path, key: str, sha256: str | None = None,
                    retain_until: datetime | None = None) -> str:
        """Copy a file offsite. On S3 its SHA-256 travels as object metadata for later checks, and
        with `retain_until` the object gets Object Lock retention in compliance mode when the
        bucket has Object Lock enabled (it cannot be deleted or overwritten before that date)."""
        return self.backend.upload_file(path, key, sha256=sha256, retain_until=retain_until)

    def object_lock_enabled(self) -> bool:
        return self.backend.object_lock_enabled()

    def recorded_sha256(self, key: str) -> str | None:
        """The object's SHA-256: computed for a local folder, from metadata on S3 (None if absent)."""
        return self.backend.recorded_sha256(key)

    def download_file(self, key: str, path: Path) -> Path:
        return self.backend.download_file(key, path)

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (an HTTP range request on S3): one gzip member of a log archive."""
        return self.backend.read_range(key, offset, length)

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when the object does not exist."""
        return self.backend.size(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        return self.backend.list_keys(prefix)

    def delete(self, key: str) -> None:
        self.backend.delete(key)
