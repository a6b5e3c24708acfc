"""Offsite storage backends behind one protocol, chosen by the URL's scheme.

One class per backend, as Prefect's `LocalFileSystem`/`S3Bucket` and pgBackRest's
`src/storage/{posix,s3}` do: `posix.PosixStorage` for `file:///folder`, `s3.S3Storage` for
`s3://bucket/prefix`. `OffsiteStorage` (the block ops edit) builds its backend with
`backend_for` and delegates every operation to it; a new backend is one module and one entry
in `BACKENDS`.
"""

from __future__ import annotations

from blocks.storage.base import NOT_FOUND, OffsiteBackend, StorageSettings
from blocks.storage.posix import PosixStorage
from blocks.storage.s3 import BOTOCORE_RETRIES, S3Storage

# scheme -> backend class (each has `from_settings(StorageSettings)`)
BACKENDS: dict[str, type] = {
    "file": PosixStorage,
    "s3": S3Storage,
}


class UnknownStorageScheme(ValueError):
    """An offsite URL whose scheme no backend serves."""


def backend_for(settings: StorageSettings) -> OffsiteBackend:
    """The backend serving `settings.url`, by its scheme."""
    scheme = settings.scheme
    try:
        backend = BACKENDS[scheme]
    except KeyError:
        raise UnknownStorageScheme(f"offsite url {settings.url!r}: no storage backend for the scheme {scheme!r} "
                                   f"(known: {', '.join(sorted(BACKENDS))})") from None
    return backend.from_settings(settings)


__all__ = ["BACKENDS", "BOTOCORE_RETRIES", "NOT_FOUND", "OffsiteBackend", "PosixStorage", "S3Storage",
           "StorageSettings", "UnknownStorageScheme", "backend_for"]
