"""Reading audit entries as an auditor does: a filtered listing, and one entry in full with its
hash, its predecessor, its flow run and whether it holds and is exported (`tradeops audit list`,
`tradeops audit show`). Nothing here writes.

An entry "holds" when its content still hashes to its stored hash and it links to the entry before
it; it is "exported" once a chain head exported offsite covers it (flows/audit_export.py), and its
exported copy must then be identical to the store's row and the head still pin the store's hash.
Only `tradeops audit verify` checks the whole chain.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from tasks.audit.chain import Row, entry_hash_of
from tasks.audit.exports import exported_entry_files, exported_heads, rows_of_export
from tasks.audit.verify import StoreChain, open_chain
from tasks.reporting import flow_run_link
from tradeops.store.canonical import ENTRY_HASH, ID, PREV_HASH, ROW_COLUMNS
from tradeops.store.records import GENESIS_HASH

JSON_COLUMNS = ("changed_files", "compliance_flags", "details")  # stored as JSON text


@dataclass(frozen=True)
class EntryFilter:
    """Which entries: stamped in [start, end), by a user, of an operation, of a flow run (all optional)."""

    start: datetime | None = None
    end: datetime | None = None
    user: str | None = None
    operation: str | None = None
    flow_run_id: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One entry as the store holds it, its JSON columns parsed, with the link to its flow run."""

    id: int
    timestamp: str  # UTC, as the hash covers it
    operation: str
    user: str
    success: bool
    strategy_name: str | None
    version: str | None
    repository_hash: str | None
    execution_time_ms: int | None
    changed_files: list
    compliance_flags: dict
    details: dict
    flow_run_id: str | None
    flow_run_link: str | None
    prev_hash: str
    entry_hash: str

    @classmethod
    def of(cls, row: Row) -> "AuditRecord":
        values = dict(zip(ROW_COLUMNS, row))
        for column in JSON_COLUMNS:
            values[column] = json.loads(values[column] or "null")
        values["success"] = bool(values["success"])
        return cls(**values, flow_run_link=flow_run_link(values["flow_run_id"]))

    def to_dict(self) -> dict:
        return asdict(self)


def list_entries(store_url: str, wanted: EntryFilter) -> Iterator[AuditRecord]:
    """The entries `wanted` picks, in chain (id) order, streamed."""
    matching = {column: value for column, value in (("user", wanted.user), ("operation", wanted.operation),
                                                    ("flow_run_id", wanted.flow_run_id)) if value is not None}
    with open_chain(store_url) as chain:
        low, high = chain.window_ids(wanted.start, wanted.end)  # as `audit verify` reads a window
        if (wanted.start or wanted.end) and low is None:
            return
        for row in chain.rows(low, high, matching):
            yield AuditRecord.of(row)


@dataclass
class EntryExport:
    """Where an exported entry's copy and the head covering it are offsite, and whether they agree
    with the ops store."""

    head_key: str
    exported_day: str
    entries_key: str | None
    copy_matches: bool | None  # the exported row equals the store's (None: its entries file is missing)
    head_matches: bool  # the head still pins the hash the store has for its entry


@dataclass
class EntryDetail:
    entry: AuditRecord
    predecessor: dict | None  # id and entry_hash of the entry before it
    hash_holds: bool  # its content hashes to its stored hash
    links: bool  # its prev_hash is its predecessor's hash (the genesis hash for the first entry)
    exports_checked: bool  # False without offsite storage: exported is unknown
    export: EntryExport | None  # None: not exported yet (or unknown)
    newest_exported_id: int | None

    @property
    def verified(self) -> bool:
        export_ok = self.export is None or (self.export.copy_matches is not False and self.export.head_matches)
        return self.hash_holds and self.links and export_ok

    def to_dict(self) -> dict:
        return {"entry": self.entry.to_dict(), "predecessor": self.predecessor, "hash_holds": self.hash_holds,
                "links_to_predecessor": self.links, "verified": self.verified,
                "exported": None if not self.exports_checked else self.export is not None,
                "export": asdict(self.export) if self.export else None,
                "newest_exported_id": self.newest_exported_id}


class NoSuchEntry(LookupError):
    pass


def entry_detail(store_url: str, entry_id: int, storage=None, environment: str | None = None,  # noqa: ANN001
                 work_dir: Path | None = None) -> EntryDetail:
    """One entry, checked against its predecessor and, with `storage`, against its offsite export."""
    with open_chain(store_url) as chain:
        row = chain.row_at(entry_id)
        if row is None:
            last = chain.last_id()
            raise NoSuchEntry(f"no audit entry id {entry_id} (entries run from id {chain.first_id()} to {last})"
                              if last is not None else f"no audit entry id {entry_id}: the audit trail is empty")
        before = chain.rows_before(entry_id, 1)
        predecessor = before[0] if before else None
        expected_link = predecessor[ENTRY_HASH] if predecessor else GENESIS_HASH
        detail = EntryDetail(
            entry=AuditRecord.of(row),
            predecessor={"id": predecessor[ID], "entry_hash": predecessor[ENTRY_HASH]} if predecessor else None,
            hash_holds=entry_hash_of(row) == row[ENTRY_HASH], links=row[PREV_HASH] == expected_link,
            exports_checked=storage is not None, export=None, newest_exported_id=None)
        if storage is not None:
            _check_export(detail, chain, row, storage, environment, work_dir)
    return detail


def _check_export(detail: EntryDetail, chain: StoreChain, row: Row, storage, environment: str,  # noqa: ANN001
                  work_dir: Path) -> None:
    heads = exported_heads(storage, environment)
    detail.newest_exported_id = heads[-1].last_id if heads else None
    covering = next((h for h in heads if h.last_id >= row[ID]), None)
    if covering is None:
        return
    files = [f for f in exported_entry_files(storage, environment) if f.first_id <= row[ID] <= f.last_id]
    copy_matches = None
    if files:
        local = storage.download_file(files[0].key, work_dir / Path(files[0].key).name)
        exported = next((r for r in rows_of_export(local) if r[ID] == row[ID]), None)
        copy_matches = exported is not None and tuple(exported) == tuple(row)
    pinned = chain.hashes_at([covering.last_id]).get(covering.last_id)
    detail.export = EntryExport(covering.key, covering.day, files[0].key if files else None, copy_matches,
                                pinned == covering.head_hash)
