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


def block_documents(name_like: str = "%") -> dict[str, tuple]:
    """Block documents whose name is LIKE `name_like`: their last update and data."""
    from prefect.client.schemas.objects import BlockDocument

    documents = {}
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            response = client.request("POST", "/block_documents/filter", json={
                "block_documents": {"name": {"like_": name_like}}, "include_secrets": True,
                "offset": offset, "limit": PAGE})
            page = BlockDocument.model_validate_list(response.json())
            for doc in page:
                documents[f"{doc.block_type.slug}/{doc.name}"] = (
                    str(doc.updated), json.dumps(doc.data, sort_keys=True, default=str))
            if len(page) < PAGE:
                return documents
            offset += PAGE


def block_document_count() -> int:
    with get_client(sync_client=True) as client:
        return client.request("POST", "/block_documents/count", json={}).json()


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
    block_count: int
    flow_runs: int
    files: dict[str, tuple]

    @classmethod
    def take(cls, folder: Path, blocks_like: str | None = "%", counts: bool = True) -> "Snapshot":
        """Everything below `folder`, the block documents named LIKE `blocks_like` (default all;
        a prefix keeps it quick when the server holds many; None: none) and, with `counts`, how
        many block documents and flow runs there are in all."""
        return cls(block_documents(blocks_like) if blocks_like else {}, block_document_count() if counts else -1,
                   flow_run_count() if counts else -1, files_below(folder))

    def changes_since(self, before: "Snapshot") -> list[str]:
        """What differs, one line each (empty: nothing was written)."""
        changes = []
        for kind, now, then in (("block", self.blocks, before.blocks), ("file", self.files, before.files)):
            for key in sorted(set(now) | set(then)):
                if now.get(key) != then.get(key):
                    changes.append(f"{kind} {key}: {'added' if key not in then else 'removed' if key not in now else 'changed'}")
        if self.block_count != before.block_count:
            changes.append(f"block documents: {before.block_count} -> {self.block_count}")
        if self.flow_runs != before.flow_runs:
            changes.append(f"flow runs: {before.flow_runs} -> {self.flow_runs}")
        return changes
