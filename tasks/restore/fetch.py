"""Get a backup set's manifest and artifacts back, from offsite or the local set folder, and prove
each file is the one the manifest describes before anything is restored from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from blocks import OffsiteStorage
from tasks.backup.encryption import SUFFIX, DecryptionError, decrypt_file, load_key
from tasks.backup.manifest import ArtifactEntry, Manifest, ManifestError
from tasks.backup.offsite import explained_s3_errors, read_offsite_manifest
from tradeops.files import sha256_file


class RestoreError(Exception):
    """A target did not come back whole; the message names it and says what differed."""


def offsite_manifest(storage: OffsiteStorage, environment: str, set_id: str) -> tuple[Manifest, list[str]]:
    """The set's manifest from offsite (its copy when the manifest is unusable), and every problem
    with either of them."""
    try:
        return read_offsite_manifest(storage, environment, set_id)
    except ManifestError as exc:
        raise RestoreError(f"set {set_id}: no usable manifest offsite ({exc})") from None


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


@dataclass
class ArtifactSources:
    """Where a set's artifacts are read from, in order: the local set folder, then offsite. An
    artifact whose local copy is missing or fails its SHA-256 is taken from offsite (checked the
    same way), and `fallbacks` says which, and why."""
    set_dir: Path | None
    storage: OffsiteStorage | None
    download_dir: Path
    fallbacks: list[str] = field(default_factory=list)

    @property
    def described(self) -> str:
        return " then ".join(name for name, there in (("local", self.set_dir), ("offsite", self.storage)) if there)

    def __call__(self, entry: ArtifactEntry) -> Path:
        problems = []
        if self.set_dir is not None:
            try:
                return local_artifact(self.set_dir, entry)
            except RestoreError as exc:
                problems.append(str(exc))
        if self.storage is not None:
            try:
                path = fetch_offsite(self.storage, entry, self.download_dir)
            except Exception as exc:  # noqa: BLE001 - S3 unreachable or refusing: named beside the local problem
                problems.append(str(exc) if isinstance(exc, RestoreError) else f"{entry.target}: {type(exc).__name__}: {exc}")
            else:
                if problems:
                    self.fallbacks.append(f"{problems[0]}; restored from the offsite copy instead, which verified")
                return path
        raise RestoreError("; ".join(problems))


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
