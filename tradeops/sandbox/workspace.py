"""The sandbox directory: refuse a user's directory, clear only what the sandbox owns.

A directory is ours if it holds the ``.tradeops-sandbox`` marker (a finished build)
or ``.tradeops-sandbox.building`` (a build that did not finish), so a failed build can
be retried, while any other non-empty directory is refused untouched. The final
marker is written last, after everything else exists.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from .errors import SandboxError

MARKER_FILE = ".tradeops-sandbox"
BUILDING_MARKER_FILE = ".tradeops-sandbox.building"
OWNED_DIRS = ("repos", "logs", "config", "certs", "apps")
OWNED_FILES = ("platform.db", "platform.db.building", "platform.db-journal", "platform.db-wal", "platform.db-shm")


def resolve_directory(directory) -> Path:
    """Absolute path of ``directory``; a SandboxError if it cannot hold a sandbox."""
    if directory is None or str(directory) == "":
        raise SandboxError("a sandbox directory is required")
    path = Path(directory).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise SandboxError(f"sandbox directory {str(path)!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not (path / MARKER_FILE).is_file() and not (path / BUILDING_MARKER_FILE).is_file():
            raise SandboxError(
                f"directory {str(path)!r} is not empty and is not a tradeops sandbox (no {MARKER_FILE} file); "
                "refusing to delete its contents. Choose an empty or new directory."
            )
    return path


def start_build(path: Path, seed: int, scale: str, now: datetime) -> None:
    """Mark the directory as a sandbox under construction and remove the previous build."""
    path.mkdir(parents=True, exist_ok=True)
    (path / BUILDING_MARKER_FILE).write_text(json.dumps({"seed": seed, "scale": scale, "started_at": now.isoformat()}))
    (path / MARKER_FILE).unlink(missing_ok=True)
    for name in OWNED_DIRS:
        target = path / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
    for name in OWNED_FILES:
        (path / name).unlink(missing_ok=True)


def finish_build(path: Path, info: dict) -> None:
    """Write the final marker (atomically) and drop the under-construction one."""
    scratch = path / (MARKER_FILE + ".tmp")
    scratch.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    os.replace(scratch, path / MARKER_FILE)
    (path / BUILDING_MARKER_FILE).unlink(missing_ok=True)
