"""An S3-compatible bucket as offsite storage (`s3://bucket/prefix`), through prefect-aws's S3Bucket.

Credentials come from an `AwsCredentials` block named in the settings, or else from the standard
AWS environment variables. botocore retries a failed request at once ("standard" mode, 3
attempts); the upload task's Prefect retries come on top.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from blocks.storage.base import NOT_FOUND, StorageSettings

BOTOCORE_RETRIES = {"mode": "standard", "total_max_attempts": 3}


@dataclass
class S3Storage:
    settings: StorageSettings
    _bucket: object = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> "S3Storage":
        return cls(settings)

    @property
    def bucket_name(self) -> str:
        return urlparse(self.settings.url).netloc

    @property
    def prefix(self) -> str:
        return urlparse(self.settings.url).path.strip("/")

    def credentials_source(self) -> str:
        """Where the S3 credentials come from, for error messages (never the values)."""
        if self.settings.aws_credentials_block:
            return f"the AwsCredentials block '{self.settings.aws_credentials_block}'"
        return "the AWS environment (AWS_ACCESS_KEY_ID and friends)"

    def s3_bucket(self):
        """The prefect-aws S3Bucket this storage writes to (bucket folder = the URL's prefix).
        Built once per backend: loading the credentials block is an API call."""
        if self._bucket is None:
            # prefect-aws (and boto3) take most of a second to import: only when S3 is used
            from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

            if self.settings.aws_credentials_block:
                credentials = AwsCredentials.load(self.settings.aws_credentials_block)
            else:
                credentials = AwsCredentials(region_name=self.settings.region)
            client = credentials.aws_client_parameters or AwsClientParameters()
            update: dict = {"config": {**(client.config or {}), "retries": BOTOCORE_RETRIES}}
            if self.settings.endpoint_url:
                update["endpoint_url"] = self.settings.endpoint_url
            credentials = credentials.model_copy(update={"aws_client_parameters": client.model_copy(update=update)})
            self._bucket = S3Bucket(bucket_name=self.bucket_name, bucket_folder=self.prefix, credentials=credentials)
        return self._bucket

    def client(self):
        return self.s3_bucket().credentials.get_s3_client()

    def full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write_bytes(self, key: str, data: bytes) -> str:
        self.s3_bucket().write_path(key, data)
        return key

    def read_bytes(self, key: str) -> bytes:
        return self.s3_bucket().read_path(key)

    def upload_file(self, path: Path, key: str, sha256: str | None = None,
                    retain_until: datetime | None = None) -> str:
        """The SHA-256 travels as object metadata for later checks; with `retain_until` the object
        gets Object Lock retention in compliance mode when the bucket has Object Lock enabled."""
        extra: dict = {"Metadata": {"sha256": sha256}} if sha256 else {}
        if retain_until is not None and self.object_lock_enabled():
            extra.update(ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=retain_until)
        self.s3_bucket().upload_from_path(str(path), key, **({"ExtraArgs": extra} if extra else {}))
        return key

    def download_file(self, key: str, path: Path) -> Path:
        self.s3_bucket().download_object_to_path(key, str(path))
        return path

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        """An HTTP range request."""
        answer = self.client().get_object(Bucket=self.bucket_name, Key=self.full_key(key),
                                          Range=f"bytes={offset}-{offset + length - 1}")
        return answer["Body"].read()

    def _head(self, key: str) -> dict | None:
        client = self.client()
        try:
            return client.head_object(Bucket=self.bucket_name, Key=self.full_key(key))
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND:
                return None
            raise

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else head["ContentLength"]

    def recorded_sha256(self, key: str) -> str | None:
        """From the object's metadata (None when the object or the metadata is absent)."""
        head = self._head(key)
        return None if head is None else head.get("Metadata", {}).get("sha256")

    def list_keys(self, prefix: str = "") -> list[str]:
        keys = [obj["Key"] for obj in self.s3_bucket().list_objects(prefix)]
        return sorted(k[len(self.prefix) + 1 :] if self.prefix else k for k in keys)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket_name, Key=self.full_key(key))

    def object_lock_enabled(self) -> bool:
        client = self.client()
        try:
            config = client.get_object_lock_configuration(Bucket=self.bucket_name)
        except client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ObjectLockConfigurationNotFoundError":
                return False
            if code in {"AccessDenied", "NotImplemented", "MethodNotAllowed", "501", "405"}:
                # a policy without s3:GetBucketObjectLockConfiguration, or a server without Object
                # Lock: upload without it, and say so
                logging.getLogger("tradeops.offsite").warning(
                    "%s: cannot read the Object Lock configuration (%s); uploading without retention",
                    self.settings.describe(), code)
                return False
            raise
        return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
