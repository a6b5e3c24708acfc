"""Get a backup set's manifest and artifacts back, from offsite or the local set folder, and prove
each file is the one the manifest describes before anything is restored from it."""

from __future__ import annotations

from pathlib import Path

from blocks import OffsiteStorage
from tasks.backup.encryption import SUFFIX, DecryptionError, decrypt_file, load_key
from tasks.backup.manifest import MANIFEST, MANIFEST_COPY, ArtifactEntry, Manifest, ManifestError, parse_manifest
from tasks.backup.offsite import explained_s3_errors
from tasks.files import sha256_file


class RestoreError(Exception):
    """A target did not come back whole; the message names it and says what differed."""


def offsite_manifest(storage: OffsiteStorage, environment: str, set_id: str) -> Manifest:
    """The set's manifest from offsite, falling back to its copy."""
    problems = []
    for name in (MANIFEST, MANIFEST_COPY):
        key = f"{environment}/{set_id}/{name}"
        try:
            with explained_s3_errors(storage):
                if storage.size(key) is None:
                    problems.append(f"offsite {key} is missing")
                    continue
                return parse_manifest(storage.read_bytes(key).decode())
        except ManifestError as exc:
            problems.append(f"offsite {key}: {exc}")
    raise RestoreError(f"set {set_id}: no usable manifest offsite ({'; '.join(problems)})")


def fetch_offsite(storage: OffsiteStorage, entry: ArtifactEntry, into: Path) -> Path:
    """Download one artifact into `into` at its set path and check its SHA-256."""
    if not entry.offsite_key:
        raise RestoreError(f"{entry.target}: {entry.path} was never copied offsite")
    destination = into / entry.path
    destination.parent.mkdir(parents=True, exist_ok=True)
    with explained_s3_errors(storage):
        if storage.size(entry.offsite_key) is None:
            raise RestoreError(f"{entry.target}: offsite object {entry.offsite_key} is missing")
        storage.download_file(entry.offsite_key, destination)
    return _checked(entry, destination, f"offsite object {entry.offsite_key}")


def local_artifact(set_dir: Path, entry: ArtifactEntry) -> Path:
    path = set_dir / entry.path
    if not path.is_file():
        raise RestoreError(f"{entry.target}: local file {path} is missing")
    return _checked(entry, path, f"local file {path}")


def _checked(entry: ArtifactEntry, path: Path, what: str) -> Path:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise RestoreError(f"{entry.target}: {what} has SHA-256 {actual[:16]}…, the manifest says "
                           f"{entry.sha256[:16]}…")
    return path


def opened(path: Path, entry: ArtifactEntry, key_block: str | None, scratch: Path) -> Path:
    """The plain artifact: decrypted into `scratch` when the set is encrypted."""
    if not path.name.endswith(SUFFIX):
        return path
    if not key_block:
        raise RestoreError(f"{entry.target}: {entry.path} is encrypted and no encryption key block is configured")
    plain = scratch / path.name.removesuffix(SUFFIX)
    try:
        decrypt_file(path, plain, load_key(key_block))
    except DecryptionError as exc:
        raise RestoreError(f"{entry.target}: {exc}") from None
    return plain
