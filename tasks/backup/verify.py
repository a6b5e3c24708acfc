"""Verify a backup set: each artifact (local bytes, the tool that reads it, the offsite copy) and
the set's own files (the manifest and its copy offsite, RECOVERY.md locally and offsite)."""

from __future__ import annotations

import sqlite3
import tempfile
import tarfile
from pathlib import Path

from blocks import OffsiteStorage
from tasks.backup.encryption import SUFFIX, DecryptionError, decrypt_file, load_key
from tasks.backup.kinds import UnknownArtifactKind, kind_of
from tasks.backup.manifest import ArtifactEntry, Manifest, ManifestError
from tasks.backup.offsite import OffsiteError, check_offsite_copy, offsite_sha256, read_offsite_manifest
from tasks.backup.recovery_doc import RECOVERY_DOC
from tasks.backup.postgres import BackupError
from tradeops.files import sha256_file


def verify_artifact(set_dir: Path, entry: ArtifactEntry, storage: OffsiteStorage | None,
                    key_block: str | None = None) -> list[str]:
    """Every problem found with this artifact; an empty list means it verified."""
    local = set_dir / entry.path
    if not local.is_file():
        return [f"local file {local} is missing"]
    problems = []
    actual = sha256_file(local)
    if actual != entry.sha256:
        problems.append(f"local {entry.path}: SHA-256 {actual[:16]}… differs from the manifest's "
                        f"{entry.sha256[:16]}…")
    elif entry.details.get("encrypted"):
        problems += _readable_sealed(local, entry, key_block)
    else:
        problems += _readable(local, entry)
    if storage is not None:
        if not entry.offsite_key:
            problems.append(f"{entry.path} was never copied offsite")
        else:
            try:
                check_offsite_copy(storage, entry.offsite_key, entry.sha256, entry.size, download=True)
            except OffsiteError as exc:
                problems.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - storage unreachable etc.: say so, per artifact
                problems.append(f"offsite {entry.offsite_key}: {type(exc).__name__}: {exc}")
    return problems


def _readable_sealed(local: Path, entry: ArtifactEntry, key_block: str | None) -> list[str]:
    """Decrypt to a private temporary file, then read it as any other artifact."""
    if not key_block:
        return [f"{entry.path} is encrypted but no encryption key block is configured"]
    with tempfile.TemporaryDirectory(prefix="tradeops-verify-") as tmp:
        plain = Path(tmp) / local.name.removesuffix(SUFFIX)
        try:
            decrypt_file(local, plain, load_key(key_block))
        except DecryptionError as exc:
            return [str(exc)]
        return _readable(plain, entry)


def _readable(local: Path, entry: ArtifactEntry) -> list[str]:
    """The artifact's own tool reads it (its kind's verifier: pg_restore, git, SQLite, tar)."""
    try:
        return kind_of(entry).verify(local, entry)
    except UnknownArtifactKind as exc:
        return [str(exc)]
    except (BackupError, OSError, tarfile.TarError, sqlite3.Error) as exc:
        return [f"{entry.path}: {exc}"]


def verify_set_files(set_dir: Path, manifest: Manifest, storage: OffsiteStorage | None) -> list[str]:
    """Every problem with the set's own files beyond the local manifest pair (read_manifest
    reports those): RECOVERY.md against the manifest's checksum of it, locally and offsite, and
    the offsite manifest and its copy, each intact and equal to the local one."""
    problems = []
    expected = manifest.recovery_doc_sha256
    local_doc = set_dir / RECOVERY_DOC
    if expected is not None:
        if not local_doc.is_file():
            problems.append(f"local file {local_doc} is missing")
        elif sha256_file(local_doc) != expected:
            problems.append(f"local {RECOVERY_DOC}: SHA-256 differs from the manifest's")
    if storage is None:
        return problems
    prefix = f"{manifest.environment}/{manifest.set_id}/"
    try:
        offsite, offsite_problems = read_offsite_manifest(storage, manifest.environment, manifest.set_id)
        problems += offsite_problems
        if offsite != manifest:
            problems.append(f"offsite {prefix}manifest.json differs from the local manifest")
        if expected is not None:
            actual = offsite_sha256(storage, prefix + RECOVERY_DOC)
            if actual is None:
                problems.append(f"offsite object {prefix}{RECOVERY_DOC} is missing")
            elif actual != expected:
                problems.append(f"offsite {prefix}{RECOVERY_DOC}: SHA-256 differs from the manifest's")
    except ManifestError as exc:
        problems.append(f"no usable manifest offsite: {exc}")
    except Exception as exc:  # noqa: BLE001 - storage unreachable etc.: say so, for the set
        problems.append(f"offsite {prefix}: {type(exc).__name__}: {exc}")
    return problems
