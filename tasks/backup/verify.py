"""Verify one artifact: local bytes, the tool that reads it, and the offsite copy."""

from __future__ import annotations

import sqlite3
import tempfile
import tarfile
from pathlib import Path

from blocks import OffsiteStorage
from tasks.backup.audit import check_audit_export
from tasks.backup.encryption import SUFFIX, DecryptionError, decrypt_file, load_key
from tasks.backup.git import bundle_refs, verify_bundle
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.offsite import OffsiteError, check_offsite_copy
from tasks.backup.postgres import BackupError, list_archive, unpack_directory_dump
from tasks.files import sha256_file


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
    """The artifact's own tool reads it: pg_restore, git, SQLite, tar."""
    try:
        if entry.kind == "pg_dump":
            if entry.details.get("format") == "directory":  # a tar of a parallel directory-format dump
                with tempfile.TemporaryDirectory(prefix="tradeops-verify-") as tmp:
                    listing = list_archive(unpack_directory_dump(local, Path(tmp), toc_only=True))
            else:
                listing = list_archive(local)
            if listing.returncode != 0:
                return [f"pg_restore --list cannot read {entry.path}: {listing.stderr.strip()[-200:]}"]
        elif entry.kind == "git_bundle":
            verify_bundle(local)
            if bundle_refs(local) != entry.details.get("refs", {}):
                return [f"{entry.path}: refs in the bundle differ from the manifest"]
        elif entry.kind == "sqlite_db":
            with sqlite3.connect(f"file:{local}?mode=ro", uri=True) as conn:
                if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    return [f"{entry.path} fails PRAGMA integrity_check"]
        elif entry.kind == "audit_log":
            if check_audit_export(local)["head"] != entry.details.get("head"):
                return [f"{entry.path}: the chain head differs from the manifest"]
        elif entry.kind == "tar":
            with tarfile.open(local, "r:gz") as tar:
                for member in tar:
                    if member.isfile():
                        tar.extractfile(member).read()
    except (BackupError, OSError, tarfile.TarError, sqlite3.Error) as exc:
        return [f"{entry.path}: {exc}"]
    return []
