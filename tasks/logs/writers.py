"""Who still has a log file open: rotation compresses a file only after every writer let go.

A writer that opened the file before it was renamed keeps appending to it under the new name
until it reopens (on a signal, on its next line, or at exit). Compressing before then would
lose those lines, so we look in /proc for open descriptors of the file's inode (Linux; what
`fuser` does) and wait. Processes we may not inspect are skipped: run the flow as the user
that owns the writers, or as root.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def processes_holding(path: Path) -> list[int]:
    """Process ids with `path` (its inode) open, ours included."""
    try:
        target = os.stat(path)
    except FileNotFoundError:
        return []
    holders = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                try:
                    found = os.stat(fd.path)
                except OSError:
                    continue
                if (found.st_ino, found.st_dev) == (target.st_ino, target.st_dev):
                    holders.append(int(entry.name))
                    break
        except OSError:  # the process ended, or it is not ours to inspect
            continue
    return holders


def wait_for_writers(path: Path, grace_seconds: float, poll_seconds: float = 0.05) -> list[int]:
    """Wait up to `grace_seconds` for every process to close `path`; the ones still holding it."""
    deadline = time.monotonic() + grace_seconds
    while True:
        holders = processes_holding(path)
        if not holders or time.monotonic() >= deadline:
            return holders
        time.sleep(poll_seconds)
