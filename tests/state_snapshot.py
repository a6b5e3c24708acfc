"""What a command may have written, to prove a refused one wrote nothing: every Prefect block
document (name, last update, data), the number of flow runs, and every file and folder below a
folder (where the tests keep data dirs and SQLite ops stores)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from prefect.client.orchestration import get_client

PAGE = 200  # the API's default page limit


def block_documents() -> dict[str, tuple]:
    documents = {}
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_block_documents(offset=offset, limit=PAGE, include_secrets=True)
            for doc in page:
                documents[f"{doc.block_type.slug}/{doc.name}"] = (
                    str(doc.updated), json.dumps(doc.data, sort_keys=True, default=str))
            if len(page) < PAGE:
                return documents
            offset += PAGE


def flow_run_count() -> int:
    with get_client(sync_client=True) as client:
        return client.count_flow_runs()


def files_below(folder: Path) -> dict[str, tuple]:
    """Every path below `folder`: folders by name, files by size, mtime and SHA-256."""
    entries: dict[str, tuple] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_dir():
            entries[key] = ("dir",)
        elif path.is_file():
            stat = path.stat()
            entries[key] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            entries[key] = ("other",)
    return entries


@dataclass(frozen=True)
class Snapshot:
    blocks: dict[str, tuple]
    flow_runs: int
    files: dict[str, tuple]

    @classmethod
    def take(cls, folder: Path) -> "Snapshot":
        return cls(block_documents(), flow_run_count(), files_below(folder))

    def changes_since(self, before: "Snapshot") -> list[str]:
        """What differs, one line each (empty: nothing was written)."""
        changes = []
        for kind, now, then in (("block", self.blocks, before.blocks), ("file", self.files, before.files)):
            for key in sorted(set(now) | set(then)):
                if now.get(key) != then.get(key):
                    changes.append(f"{kind} {key}: {'added' if key not in then else 'removed' if key not in now else 'changed'}")
        if self.flow_runs != before.flow_runs:
            changes.append(f"flow runs: {before.flow_runs} -> {self.flow_runs}")
        return changes
