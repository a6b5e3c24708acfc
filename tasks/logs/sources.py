"""Where an archive's bytes are read from: the local copy while it exists, else offsite."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tasks.logs.archive import archive_root
from tasks.logs.retrieve import RetrievalError
from tradeops.store import LogArchive

Reader = Callable[[int, int], bytes]


def archive_reader(env_block) -> Callable[[LogArchive], Reader]:
    """`reader_for(row)` for `retrieve_logs`, over an environment's log directories and offsite."""
    roots = {logs.target: archive_root(env_block.data_dir, logs.archive_dir) for logs in env_block.log_directories()}
    storage = env_block.offsite()

    def reader_for(row: LogArchive) -> Reader:
        local = roots.get(row.target, archive_root(env_block.data_dir, None)) / row.archive_name
        if row.local_deleted_at is None and local.is_file():
            return lambda offset, length: _read_local(local, offset, length)
        if row.offsite_key and row.offsite_deleted_at is None and storage is not None:
            return lambda offset, length: storage.read_range(row.offsite_key, offset, length)
        raise RetrievalError(f"{row.archive_name}: neither the local copy ({local}) nor an offsite copy is available")

    return reader_for


def _read_local(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)
