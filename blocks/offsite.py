"""Offsite storage: a local folder (`file:///...`) or any S3-compatible bucket (`s3://bucket/prefix`).

S3 goes through prefect-aws's `S3Bucket`; credentials come from an `AwsCredentials` block named
in `aws_credentials_block`, or else from the standard AWS environment variables. Nothing secret
is stored here.

Retries come in two layers: botocore retries a failed request at once ("standard" mode, 3
attempts: throttling, HTTP 5xx, dropped connections), and the upload task is retried by Prefect
`retries` times with exponential backoff from `retry_delay_seconds`, visible as AwaitingRetry
states in the UI. Rejected credentials and a missing bucket are never retried.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from prefect.blocks.core import Block
from pydantic import Field, PrivateAttr

from tradeops.files import atomic_copy, atomic_write_bytes, sha256_file


BOTOCORE_RETRIES = {"mode": "standard", "total_max_attempts": 3}
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


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

    _bucket = PrivateAttr(None)

    @property
    def scheme(self) -> str:
        return urlparse(self.url).scheme

    def describe(self) -> str:
        return self.url + (f" via {self.endpoint_url}" if self.endpoint_url else "")

    # -- local folder -------------------------------------------------------------------------
    def _local(self, key: str) -> Path:
        return Path(urlparse(self.url).path) / key

    # -- S3 -----------------------------------------------------------------------------------
    def credentials_source(self) -> str:
        """Where the S3 credentials come from, for error messages (never the values)."""
        if self.aws_credentials_block:
            return f"the AwsCredentials block '{self.aws_credentials_block}'"
        return "the AWS environment (AWS_ACCESS_KEY_ID and friends)"

    def s3_bucket(self):
        """The prefect-aws S3Bucket this storage writes to (bucket folder = the URL's prefix).
        Built once per block instance: loading the credentials block is an API call."""
        if self._bucket is None:
            from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

            if self.aws_credentials_block:
                credentials = AwsCredentials.load(self.aws_credentials_block)
            else:
                credentials = AwsCredentials(region_name=self.region)
            client = credentials.aws_client_parameters or AwsClientParameters()
            update: dict = {"config": {**(client.config or {}), "retries": BOTOCORE_RETRIES}}
            if self.endpoint_url:
                update["endpoint_url"] = self.endpoint_url
            credentials = credentials.model_copy(update={"aws_client_parameters": client.model_copy(update=update)})
            parsed = urlparse(self.url)
            self._bucket = S3Bucket(bucket_name=parsed.netloc, bucket_folder=parsed.path.strip("/"),
                                    credentials=credentials)
        return self._bucket

    def _client(self):
        return self.s3_bucket().credentials.get_s3_client()

    def _s3_key(self, key: str) -> tuple[str, str]:
        parsed = urlparse(self.url)
        prefix = parsed.path.strip("/")
        return parsed.netloc, f"{prefix}/{key}" if prefix else key

    # -- operations used by flows ----------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        if self.scheme == "file":
            atomic_write_bytes(self._local(key), data)
        else:
            self.s3_bucket().write_path(key, data)
        return key

    def read_bytes(self, key: str) -> bytes:
        if self.scheme == "file":
            return self._local(key).read_bytes()
        return self.s3_bucket().read_path(key)

    def upload_file(self, path: Path, key: str, sha256: str | None = None,
                    retain_until: datetime | None = None) -> str:
        """Copy a file offsite. On S3 its SHA-256 travels as object metadata for later checks, and
        with `retain_until` the object gets Object Lock retention in compliance mode when the
        bucket has Object Lock enabled (it cannot be deleted or overwritten before that date)."""
        if self.scheme == "file":
            atomic_copy(path, self._local(key))
            return key
        extra: dict = {"Metadata": {"sha256": sha256}} if sha256 else {}
        if retain_until is not None and self.object_lock_enabled():
            extra.update(ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=retain_until)
        self.s3_bucket().upload_from_path(str(path), key, **({"ExtraArgs": extra} if extra else {}))
        return key

    def object_lock_enabled(self) -> bool:
        if self.scheme != "s3":
            return False
        client = self._client()
        try:
            config = client.get_object_lock_configuration(Bucket=urlparse(self.url).netloc)
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ObjectLockConfigurationNotFoundError":
                return False
            if code in {"AccessDenied", "NotImplemented", "MethodNotAllowed", "501", "405"}:
                # a policy without s3:GetBucketObjectLockConfiguration, or a server without Object
                # Lock: upload without it, and say so
                logging.getLogger("tradeops.offsite").warning(
                    "%s: cannot read the Object Lock configuration (%s); uploading without retention",
                    self.describe(), code)
                return False
            raise
        return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def recorded_sha256(self, key: str) -> str | None:
        """The object's SHA-256: computed for a local folder, from metadata on S3 (None if absent)."""
        if self.scheme == "file":
            local = self._local(key)
            return sha256_file(local) if local.is_file() else None
        name, full_key = self._s3_key(key)
        client = self._client()
        try:
            return client.head_object(Bucket=name, Key=full_key).get("Metadata", {}).get("sha256")
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND:
                return None
            raise

    def download_file(self, key: str, path: Path) -> Path:
        if self.scheme == "file":
            atomic_copy(self._local(key), path)
        else:
            self.s3_bucket().download_object_to_path(key, str(path))
        return path

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (an HTTP range request on S3): one gzip member of a log archive."""
        if self.scheme == "file":
            with open(self._local(key), "rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        name, full_key = self._s3_key(key)
        answer = self._client().get_object(Bucket=name, Key=full_key, Range=f"bytes={offset}-{offset + length - 1}")
        return answer["Body"].read()

    def size(self, key: str) -> int | None:
        """Size in bytes, or None when the object does not exist."""
        if self.scheme == "file":
            local = self._local(key)
            return local.stat().st_size if local.is_file() else None
        name, full_key = self._s3_key(key)
        client = self._client()
        try:
            return client.head_object(Bucket=name, Key=full_key)["ContentLength"]
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND:
                return None
            raise

    def list_keys(self, prefix: str = "") -> list[str]:
        if self.scheme == "file":
            root = self._local("")
            base = root / prefix
            if not base.exists():
                return []
            return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())
        bucket_prefix = urlparse(self.url).path.strip("/")
        keys = [obj["Key"] for obj in self.s3_bucket().list_objects(prefix)]
        return sorted(k[len(bucket_prefix) + 1 :] if bucket_prefix else k for k in keys)

    def delete(self, key: str) -> None:
        if self.scheme == "file":
            self._local(key).unlink(missing_ok=True)
            return
        name, full_key = self._s3_key(key)
        self._client().delete_object(Bucket=name, Key=full_key)
