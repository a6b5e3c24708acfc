"""Restore a configuration or log archive into a directory and prove every file's SHA-256
equals the one recorded when it was archived."""

from __future__ import annotations

import tarfile
from pathlib import Path

from tasks.backup.manifest import ArtifactEntry
from tradeops.files import sha256_file
from tasks.restore.compare import differences
from tasks.restore.fetch import RestoreError


def restore_archive(archive: Path, entry: ArtifactEntry, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(destination, filter="data")  # no absolute paths, links or devices
    except (tarfile.TarError, OSError) as exc:
        raise RestoreError(f"{entry.target}: cannot extract {entry.path}: {exc}") from None


def check_files(destination: Path, entry: ArtifactEntry) -> list[str]:
    recorded = entry.details.get("file_sha256")
    if recorded is None:
        return [f"{entry.target}: the manifest holds no per-file checksums (a set made before they were recorded)"]
    restored = {str(p.relative_to(destination)): p for p in destination.rglob("*") if p.is_file()}
    problems = differences(restored, recorded, "", lambda name, path, digest: None if sha256_file(path) == digest
                           else f"{name}: SHA-256 differs from the manifest")
    return [f"{entry.target}: {p}" for p in problems]
