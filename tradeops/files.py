"""Atomic file writes: a reader never sees a half-written backup, report or manifest.

Write to a temporary name in the same folder, fsync the file, rename it over the final name,
then fsync the folder so the rename itself survives a crash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

CHUNK = 1024 * 1024


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """The hidden name a file is written under before it is published."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def publish(tmp: Path, path: Path) -> None:
    """Make a file written by someone else (pg_dump, git) durable, then give it its final name."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextmanager
def atomic_output(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open `path` for writing so that it appears complete or not at all; with `mode` (0o600 for a
    private key) the file has that mode from its creation, never wider even for a moment."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        opener = None if mode is None else (lambda name, flags: os.open(name, flags, mode))
        with open(tmp, "wb", opener=opener) as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)  # also when a stale temporary file had another mode
            yield handle
        publish(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_copy(source: Path, destination: Path, mode: int | None = None) -> None:
    with open(source, "rb") as src, atomic_output(destination, mode) as dst:
        copy_into(src, dst)


def copy_into(src: BinaryIO, dst: BinaryIO) -> None:
    """The rest of `src` into `dst`: copied by the kernel (copy_file_range) where both filesystems
    allow it, else in 1 MiB chunks through this process."""
    dst.flush()
    try:
        while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
            pass
        return
    except OSError:  # EXDEV, EINVAL: older kernels and some filesystem pairs; go on from where it stopped
        pass
    shutil.copyfileobj(src, dst, CHUNK)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_repositories(root: str | None, paths) -> list[Path]:
    """Git repositories named by ``paths`` and every repository directly below ``root`` (working
    copies or bare), sorted by name; named ones that are missing are kept, for reporting."""
    found = [Path(p) for p in paths]
    if root:
        folder = Path(root)
        if folder.is_dir():
            found += [p for p in folder.iterdir() if (p / ".git").exists() or (p / "HEAD").is_file()]
    return sorted(set(found), key=lambda p: p.name)
