"""Daily offsite exports of the audit chain, and the ops store checked against them (issue 7).

The hash chain proves that the rows link up, but whoever can write the ops store could rewrite
the chain from some entry onward, recomputing every hash after it, and the chain would still
verify. So every day the chain head (the newest entry's id and hash) and the entries appended
since the previous export are copied offsite, where S3 Object Lock in compliance mode keeps them
for the audit retention (7 years) where the bucket has it: not even the account's root can
delete or overwrite them. `audit verify` then checks every exported head against the store, and
for a head that no longer matches, compares the exported entries row by row to name the first
entry that was changed, deleted or inserted after its export.

Offsite layout, per environment:
    audit-chain/<env>/<YYYY>/<MM>/<DD>/entries-<first id>-<last id>.jsonl   the new entries
    audit-chain/<env>/<YYYY>/<MM>/<DD>/head-<last id>-<sha256>.json          written last
A head's key carries the id and hash it pins, so verification needs only a listing; its body
repeats them with the link to the previous export and the entries file's SHA-256.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

from tasks.audit.chain import Row, classify_break, walk
from tradeops.files import atomic_output, atomic_write_text, sha256_file
from tradeops.store.canonical import ENTRY_HASH, ID, ROW_COLUMNS
from tradeops.store.records import GENESIS_HASH

AUDIT_RETENTION_DAYS = 7 * 365  # runbook 000: audit data kept 7 years
HEAD_FORMAT = "tradeops-audit-head/1"
_HEAD = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/head-(\d{12})-([0-9a-f]{64})\.json$")
_ENTRIES = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/entries-(\d{12})-(\d{12})\.jsonl$")


class AuditExportError(Exception):
    """The chain cannot be exported as it stands (it does not hold against itself or its exports)."""


def export_root(environment: str) -> str:
    return f"audit-chain/{environment}/"


def retain_until(now: datetime) -> datetime:
    return now + timedelta(days=AUDIT_RETENTION_DAYS)


@dataclass(frozen=True)
class ExportedHead:
    key: str
    day: str  # the UTC day it was exported, YYYY-MM-DD
    last_id: int
    head_hash: str


@dataclass(frozen=True)
class ExportedEntries:
    key: str
    day: str
    first_id: int
    last_id: int


def exported_heads(storage, environment: str) -> list[ExportedHead]:
    """Every head exported for `environment`, oldest (lowest id) first, from the listing alone."""
    heads = []
    for key in storage.list_keys(export_root(environment)):
        if match := _HEAD.search(key):
            year, month, day, last_id, digest = match.groups()
            heads.append(ExportedHead(key, f"{year}-{month}-{day}", int(last_id), digest))
    return sorted(heads, key=lambda h: (h.last_id, h.day, h.key))


def exported_entry_files(storage, environment: str) -> list[ExportedEntries]:
    files = []
    for key in storage.list_keys(export_root(environment)):
        if match := _ENTRIES.search(key):
            year, month, day, first_id, last_id = match.groups()
            files.append(ExportedEntries(key, f"{year}-{month}-{day}", int(first_id), int(last_id)))
    return sorted(files, key=lambda f: (f.first_id, f.key))


def _day_folder(environment: str, moment: datetime) -> str:
    return f"{export_root(environment)}{moment:%Y/%m/%d}/"


def row_line(row: Row) -> bytes:
    """One exported entry: the chain row's columns by name, as the walk reads them back."""
    return (json.dumps(dict(zip(ROW_COLUMNS, row)), ensure_ascii=False) + "\n").encode()


def rows_of_export(path: Path) -> Iterator[tuple]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                values = json.loads(line)
                yield tuple(values[column] for column in ROW_COLUMNS)
            except (ValueError, KeyError) as exc:
                raise AuditExportError(f"{path.name} line {number} is not an exported audit entry: {exc}") from None


# -- the export ----------------------------------------------------------------------------------

@dataclass
class ExportFiles:
    """What one export writes locally, ready to upload (entries first, head last)."""

    head: dict
    head_path: Path
    head_key: str
    entries_path: Path | None = None
    entries_key: str | None = None


def write_export(chain, environment: str, folder: Path, now: datetime, previous: ExportedHead | None,
                 flow_run_id: str | None = None) -> ExportFiles | None:
    """Write the entries appended since `previous` and the new head into `folder`.

    The entries are walked as they are written: each hash is recomputed and the first must link to
    the previous export's head, so a chain that does not hold is never exported (AuditExportError
    names the entry). None when the chain is empty: there is nothing to pin yet.
    """
    link = previous.head_hash if previous else GENESIS_HASH
    low = previous.last_id + 1 if previous else None
    day_folder = _day_folder(environment, now)
    rows = chain.rows(low, None)
    first = next(rows, None)
    head = {"format": HEAD_FORMAT, "environment": environment, "exported_at": now.isoformat(),
            "flow_run_id": flow_run_id, "previous_head_key": previous.key if previous else None,
            "link": link, "entries": 0, "first_id": None, "entries_key": None, "entries_sha256": None}
    files = ExportFiles(head=head, head_path=folder / "head.json", head_key="")
    if first is None:
        if previous is None:
            return None
        head.update(last_id=previous.last_id, head_hash=previous.head_hash)
    else:
        pending = folder / "entries.jsonl"
        with atomic_output(pending) as handle:
            result = walk(_written(_chained(first, rows), handle), link)
            if result.broken is not None:
                problem = classify_break(chain, result.broken, result.computed, result.expected_link)
                raise AuditExportError(f"the audit chain does not hold, nothing exported: {problem.message}")
        first_id = first[ID]
        files.entries_key = f"{day_folder}entries-{first_id:012d}-{result.last_id:012d}.jsonl"
        files.entries_path = folder / Path(files.entries_key).name
        pending.rename(files.entries_path)
        head.update(last_id=result.last_id, head_hash=result.head, entries=result.checked, first_id=first_id,
                    entries_key=files.entries_key, entries_sha256=sha256_file(files.entries_path))
    files.head_key = f"{day_folder}head-{head['last_id']:012d}-{head['head_hash']}.json"
    files.head_path = folder / Path(files.head_key).name
    atomic_write_text(files.head_path, json.dumps(head, indent=2, sort_keys=True) + "\n")
    return files


def _chained(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def _written(rows: Iterable[Row], handle) -> Iterator[Row]:  # noqa: ANN001
    for row in rows:
        handle.write(row_line(row))
        yield row


# -- the store checked against its exports -------------------------------------------------------

@dataclass
class ExportCheck:
    """Exported heads compared with the ops store; `mismatch` names the first entry at fault."""

    heads_checked: int = 0
    heads_total: int = 0
    latest: ExportedHead | None = None
    mismatch: dict | None = None  # kind (modified, deleted, inserted), entry_id, export_key, message
    unexported: int = 0  # entries in the store after the newest exported head
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.mismatch is None

    def to_dict(self) -> dict:
        return {"intact": self.intact, "heads_checked": self.heads_checked, "heads_total": self.heads_total,
                "latest": vars(self.latest) if self.latest else None, "mismatch": self.mismatch,
                "unexported": self.unexported, "notes": self.notes}

    def summary(self) -> str:
        if self.mismatch:
            return f"audit chain differs from its offsite export ({self.mismatch['kind']}): {self.mismatch['message']}"
        pending = ("every entry is exported" if not self.unexported else
                   f"{self.unexported} newer {'entry is' if self.unexported == 1 else 'entries are'} not exported yet")
        if not self.heads_total:
            return f"no audit chain head has been exported offsite yet: {pending}"
        latest = self.latest
        counted = "the exported head matches" if self.heads_checked == 1 else \
            f"all {self.heads_checked} exported heads match"
        return (f"{counted} (latest: entry id {latest.last_id}, hash {latest.head_hash}, exported {latest.day}); "
                f"{pending}")


def check_against_exports(chain, storage, environment: str, work_dir: Path) -> ExportCheck:
    """Every exported head must still be the hash of its entry in the store. At the first that is
    not, the exported entries since the last head that held are compared with the store's rows to
    name the first entry changed, deleted or inserted after the export (files land in `work_dir`)."""
    heads = exported_heads(storage, environment)
    check = ExportCheck(heads_total=len(heads), latest=heads[-1] if heads else None,
                        unexported=chain.count_after(heads[-1].last_id if heads else 0))
    if not heads:
        check.notes.append(f"no audit chain head exported under {export_root(environment)} yet")
        return check
    in_store = chain.hashes_at(sorted({h.last_id for h in heads}))
    held_through = 0
    for head in heads:
        if in_store.get(head.last_id) == head.head_hash:
            check.heads_checked += 1
            held_through = head.last_id
            continue
        check.mismatch = _first_difference(chain, storage, environment, held_through, head,
                                           in_store.get(head.last_id), work_dir)
        break
    return check


def _first_difference(chain, storage, environment: str, held_through: int, head: ExportedHead,
                      store_hash: str | None, work_dir: Path) -> dict:
    exported = dict(_exported_rows(storage, environment, held_through + 1, head.last_id, work_dir))
    stored = {row[ID]: tuple(row) for row in chain.rows(held_through + 1, head.last_id)}
    for entry_id in sorted(exported.keys() | stored.keys()):
        (source, old), new = exported.get(entry_id, (None, None)), stored.get(entry_id)
        if old is None:
            return _mismatch("inserted", entry_id, head.key,
                             f"entry id {entry_id} is in the ops store but not in the entries exported up to "
                             f"entry id {head.last_id} ({head.day}): inserted after the export")
        if new is None:
            return _mismatch("deleted", entry_id, source.key,
                             f"entry id {entry_id}, exported {source.day} ({source.key}), is missing from the "
                             "ops store: deleted after the export")
        if old != new:
            changed = [c for c, a, b in zip(ROW_COLUMNS, old, new) if a != b and c != "entry_hash"]
            return _mismatch("modified", entry_id, source.key,
                             f"entry id {entry_id} differs from its copy exported {source.day} ({source.key}): "
                             f"{', '.join(changed) or 'entry_hash'} changed; exported hash {old[ENTRY_HASH][:12]}…, "
                             f"ops store {new[ENTRY_HASH][:12]}…")
    what = f"hash {store_hash[:12]}…" if store_hash else "no such entry"
    return _mismatch("modified" if store_hash else "deleted", head.last_id, head.key,
                     f"the head exported {head.day} ({head.key}) pins entry id {head.last_id} to hash "
                     f"{head.head_hash[:12]}…, the ops store has {what}; the exported entries needed to name the "
                     "first changed entry are not available")


def _mismatch(kind: str, entry_id: int, key: str, message: str) -> dict:
    return {"kind": kind, "entry_id": entry_id, "export_key": key, "message": message}


def _exported_rows(storage, environment: str, low: int, high: int,
                   work_dir: Path) -> Iterator[tuple[int, tuple[ExportedEntries, tuple]]]:
    """(id, (file, row)) for the exported entries with low <= id <= high, from the files covering them."""
    for item in exported_entry_files(storage, environment):
        if item.last_id < low or item.first_id > high:
            continue
        local = storage.download_file(item.key, work_dir / Path(item.key).name)
        for row in rows_of_export(local):
            if low <= row[ID] <= high:
                yield row[ID], (item, row)
