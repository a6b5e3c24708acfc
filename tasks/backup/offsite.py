"""Offsite copies: upload, then prove the copy (size and SHA-256) before the catalog records it.

An upload to a key that already holds different content fails instead of overwriting; the same
content already there is accepted (a re-run after a crash). Transient errors (throttling, HTTP
5xx, dropped connections) are retried with backoff by the task wrapper; errors no retry can fix
(credentials rejected or missing, no such bucket) become `OffsiteRejected` and are not retried.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from blocks import OffsiteStorage
from tasks.backup.manifest import Manifest, read_manifest_pair
from tradeops.files import sha256_file


class OffsiteError(Exception):
    """The offsite copy is missing, different, or could not be made."""


class OffsiteConflict(OffsiteError):
    """The key already holds different content: never overwritten."""


class OffsiteRejected(OffsiteError):
    """S3 refused for a reason a retry cannot fix: the credentials or the bucket."""


# S3 error codes that mean "fix the credentials", as AWS and S3-compatible servers send them.
CREDENTIAL_ERRORS = {"ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "InvalidToken",
                     "SignatureDoesNotMatch", "AccessDenied", "TokenRefreshRequired", "InvalidClientTokenId",
                     "UnrecognizedClientException"}
# 4xx answers that are still worth retrying (botocore's standard retry mode agrees), and
# answers of S3-compatible servers that no retry changes.
RETRYABLE_CLIENT_ERRORS = {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
                           "Throttling", "ThrottlingException", "SlowDown", "RequestLimitExceeded",
                           "TooManyRequestsException", "RequestThrottled", "408", "429"}


def not_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (OffsiteConflict, OffsiteRejected))


def offsite_failure_reason(exc: BaseException, attempts: int) -> str:
    """One short line for the run summary: S3's own answer, and whether retrying was tried."""
    if not_retryable(exc):
        return str(exc)
    return f"{s3_reason(exc)} (gave up after {attempts} attempts)"


def s3_reason(exc: BaseException) -> str:
    """S3's own answer (`PutObject: SlowDown: Please reduce your request rate.`), else the error."""
    error = _client_error(exc)
    if error is not None:
        detail = error.response.get("Error", {})
        return f"{error.operation_name}: {detail.get('Code', '')}: {detail.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


def _client_error(exc: BaseException):
    """The botocore ClientError behind `exc` (boto3's upload wraps it in S3UploadFailedError)."""
    from botocore.exceptions import ClientError

    while exc is not None and not isinstance(exc, ClientError):
        exc = exc.__cause__ or exc.__context__
    return exc


@contextmanager
def explained_s3_errors(storage: OffsiteStorage):
    """Turn S3's permanent refusals into one clear `OffsiteRejected` naming what to fix."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    try:
        yield
    except OffsiteError:
        raise
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise OffsiteRejected(f"{storage.describe()}: no usable credentials in {storage.credentials_source()} "
                              f"({exc}); not retried") from exc
    except Exception as exc:
        error = _client_error(exc)
        if error is None:
            raise
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        source = storage.credentials_source()
        if code in {"400", "403"}:  # a HEAD error has no body: S3 says no more than the status
            raise OffsiteRejected(f"{storage.describe()}: {error.operation_name} answered {status} with no detail; "
                                  "S3 answers a HEAD request this way for expired or invalid credentials, a missing "
                                  f"permission or a wrong region: check {source} and the region; not retried") \
                from exc
        if code in CREDENTIAL_ERRORS:
            raise OffsiteRejected(f"{storage.describe()} rejected the credentials from {source} "
                                  f"({error.operation_name}: {code}: {message}); renew them and run again; "
                                  "not retried") from exc
        if (400 <= status < 500 and code not in RETRYABLE_CLIENT_ERRORS) or code == "NotImplemented":
            raise OffsiteRejected(f"{storage.describe()}: {error.operation_name} answered {status} {code}: "
                                  f"{message}; check the offsite settings; not retried") from exc
        raise


def publish_offsite(storage: OffsiteStorage, path: Path, key: str, sha256: str, size: int,
                    retain_until: datetime | None = None) -> str:
    """Upload and check one file; `retain_until` asks for Object Lock (compliance-class objects)."""
    with explained_s3_errors(storage):
        return _publish(storage, path, key, sha256, size, retain_until)


def _publish(storage: OffsiteStorage, path: Path, key: str, sha256: str, size: int,
             retain_until: datetime | None) -> str:
    existing = storage.size(key)
    if existing is not None:
        if existing == size and storage.recorded_sha256(key) == sha256:
            return key
        raise OffsiteConflict(f"{storage.describe()} already holds different content at {key}; not overwritten")
    storage.upload_file(path, key, sha256=sha256, retain_until=retain_until)
    _check(storage, key, sha256, size, download=False)
    return key


def check_offsite_copy(storage: OffsiteStorage, key: str, sha256: str, size: int, download: bool) -> None:
    """Size and recorded checksum; with `download`, the bytes themselves are read back and hashed."""
    with explained_s3_errors(storage):
        _check(storage, key, sha256, size, download)


def _check(storage: OffsiteStorage, key: str, sha256: str, size: int, download: bool) -> None:
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


def read_offsite_manifest(storage: OffsiteStorage, environment: str, set_id: str) -> tuple[Manifest, list[str]]:
    """The set's manifest offsite (its copy when the manifest is unusable) and every problem with
    either; ManifestError when neither can be trusted."""
    prefix = f"{environment}/{set_id}/"

    def read(name: str) -> bytes | None:
        with explained_s3_errors(storage):
            return storage.read_bytes(prefix + name) if storage.size(prefix + name) is not None else None

    return read_manifest_pair(read, f"offsite {prefix}")


def offsite_sha256(storage: OffsiteStorage, key: str) -> str | None:
    """The SHA-256 of the object's bytes, read back (None when it does not exist)."""
    with explained_s3_errors(storage):
        if storage.size(key) is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            return sha256_file(storage.download_file(key, Path(tmp) / "object"))


def claim_offsite_keys(storage: OffsiteStorage | None, entries: list, prefix: str) -> None:
    """Give each artifact the offsite key it will be found at. A reused artifact keeps its earlier
    set's key only when the offsite store configured now holds exactly its bytes there (same size
    and SHA-256); otherwise (another bucket or folder, a bundle sealed since, an object gone) it
    is copied again, under this set's prefix."""
    for entry in entries:
        if storage is None:
            entry.offsite_key = None
            continue
        if entry.offsite_key and not entry.offsite_key.startswith(prefix) and not _holds(storage, entry):
            entry.offsite_key = None
        if entry.offsite_key is None:
            entry.offsite_key = f"{prefix}{entry.path}"


def _holds(storage: OffsiteStorage, entry) -> bool:
    try:
        with explained_s3_errors(storage):
            return (storage.size(entry.offsite_key) == entry.size
                    and storage.recorded_sha256(entry.offsite_key) == entry.sha256)
    except Exception:  # noqa: BLE001 - cannot confirm it is there: copy it again (the upload names any fault)
        return False
