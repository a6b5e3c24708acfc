"""Restore a git bundle as a mirror repository and prove it: every ref at its recorded commit,
`git fsck` clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tasks.backup.git import repository_refs
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import BackupError
from tasks.restore.compare import differences
from tasks.restore.fetch import RestoreError
from tasks.tool_output import tool_error


def restore_bundle(bundle: Path, entry: ArtifactEntry, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["git", "clone", "--quiet", "--mirror", str(bundle), str(destination)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RestoreError(f"{entry.target}: git clone from {entry.path} failed: {tool_error(done.stderr)}")


def check_repository(repo: Path, entry: ArtifactEntry) -> list[str]:
    try:
        restored = repository_refs(repo)
    except BackupError as exc:
        return [f"{entry.target}: {exc}"]
    problems = differences(restored, entry.details.get("refs", {}), "ref ", lambda ref, now, then: None if now == then
                           else f"ref {ref} points at {now[:12]}, the manifest says {then[:12]}")
    fsck = subprocess.run(["git", "-C", str(repo), "fsck", "--full", "--no-progress", "--no-dangling"],
                          capture_output=True, text=True)
    if fsck.returncode != 0:
        problems.append(f"git fsck: {tool_error(fsck.stderr or fsck.stdout)}")
    return [f"{entry.target}: {p}" for p in problems]
