"""Git backups: one `git bundle --all` per repository, verifiable and clonable with stock git.

A repository whose refs equal those of its last verified backup is not packed again: the new
set hard-links the earlier bundle and records which set it reuses.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from tasks.backup.postgres import BackupError
from tradeops.files import publish, temporary_name
from tasks.tool_output import tool_error


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def repository_refs(repo: Path) -> dict[str, str]:
    """Every ref (branches, tags, HEAD) and the object it points at."""
    if not repo.is_dir():
        raise BackupError(f"repository {repo} does not exist")
    listing = _git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo)
    if listing.returncode != 0:
        raise BackupError(f"{repo} is not a readable git repository: {listing.stderr.strip()}")
    refs = dict(line.split(" ", 1) for line in listing.stdout.splitlines())
    head = _git("rev-parse", "--verify", "-q", "HEAD", cwd=repo)
    if head.returncode == 0:
        refs["HEAD"] = head.stdout.strip()
    if not refs:
        raise BackupError(f"{repo} has no refs to back up")
    return refs


def bundle_repository(repo: Path, bundle_path: Path) -> None:
    """`git bundle create --all`, verified, fsynced, then renamed into place."""
    bundle_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(bundle_path)
    try:
        created = _git("bundle", "create", str(tmp), "--all", cwd=repo)
        if created.returncode != 0:
            raise BackupError(f"git bundle create failed for {repo}: {tool_error(created.stderr)}")
        verify_bundle(tmp)
        publish(tmp, bundle_path)
    finally:
        tmp.unlink(missing_ok=True)


def verify_bundle(bundle: Path) -> None:
    """Stock git's own check, run in an empty repository: the bundle must stand alone."""
    with tempfile.TemporaryDirectory(prefix="tradeops-bundle-") as empty:
        _git("init", "--quiet", "--bare", empty)
        checked = _git("bundle", "verify", str(bundle.resolve()), cwd=Path(empty))
    if checked.returncode != 0:
        raise BackupError(f"git bundle verify failed for {bundle.name}: {tool_error(checked.stderr)}")


def bundle_refs(bundle: Path) -> dict[str, str]:
    heads = _git("bundle", "list-heads", str(bundle), cwd=bundle.parent)
    if heads.returncode != 0:
        raise BackupError(f"cannot list the refs of {bundle.name}: {heads.stderr.strip()}")
    return {ref: obj for obj, ref in (line.split(" ", 1) for line in heads.stdout.splitlines())}


def reuse_bundle(previous: Path, bundle_path: Path) -> None:
    """Point the new set at the unchanged earlier bundle without copying its bytes."""
    bundle_path.parent.mkdir(parents=True, exist_ok=True)
    os.link(previous, bundle_path)
