"""Rotation of live log files without losing a line (runbook 003 "Log Rotation", done safely).

The live file is renamed aside (writers keep their descriptor, so lines they write meanwhile land
in the renamed file), an empty file with the same mode and owner takes its name (logrotate's
`create`), the optional reopen command tells writers to reopen, and the renamed file is archived
only once no process holds it open. `copytruncate` is never used: lines written between the copy
and the truncate would be lost.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

from tradeops.files import fsync_dir
from tasks.logs.naming import is_rotated, rotated_by_us, rotated_name

ROTATION_RULES = {
    "quiet_seconds": 300,  # a rotated-looking file written this recently may still be live: wait
    "reopen_timeout_seconds": 60,
}


def live_files_to_rotate(folder: Path, pattern: str, rotate_bytes: int) -> list[Path]:
    """Live (not rotated) files over the size limit, largest first."""
    found = [p for p in folder.glob(pattern) if p.is_file() and not p.is_symlink() and not is_rotated(p.name)]
    return sorted((p for p in found if p.stat().st_size > rotate_bytes), key=lambda p: -p.stat().st_size)


def rotate_live_file(path: Path, now: datetime) -> Path:
    """Rename `path` aside and create an empty file in its place; returns the rotated file."""
    target = path.with_name(rotated_name(path.name, now))
    n = 1
    while target.exists():
        target = path.with_name(f"{target.stem.split('.')[0]}.{n}.log")
        n += 1
    before = path.stat()
    os.rename(path, target)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # a writer reopened first and created it: keep theirs
        pass
    else:
        os.close(fd)
        os.chmod(path, before.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(path, before.st_uid, before.st_gid)
    fsync_dir(path.parent)
    return target


def run_reopen_command(argv: list[str]) -> str:
    """Tell the writers to reopen their files (e.g. SIGHUP); returns how it went, in a few words."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=ROTATION_RULES["reopen_timeout_seconds"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"reopen command failed: {type(exc).__name__}: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return f"reopen command exited {done.returncode}: {tail[0][:200]}"
    return "reopen command done"


def rotated_files_ready(folder: Path, pattern: str, now: datetime, just_rotated: set[Path]) -> list[Path]:
    """Rotated files to archive: ours (from this run or an earlier one whose writer held on), and
    files the platform rotated itself once nobody wrote them for a while."""
    ready = []
    for path in sorted(folder.glob(pattern)):
        if not path.is_file() or path.is_symlink() or not is_rotated(path.name):
            continue
        quiet = now.timestamp() - path.stat().st_mtime >= ROTATION_RULES["quiet_seconds"]
        if path in just_rotated or rotated_by_us(path.name) or quiet:
            ready.append(path)
    return ready
