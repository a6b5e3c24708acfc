"""The audit trail in a backup set (runbook 000 weekly backup: "Backup audit logs").

Exported as JSON lines in chain order, each with its hashes, so the copy can be checked on its
own: every entry's hash recomputed, every link to the previous entry followed.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from tasks.backup.postgres import BackupError
from tradeops.files import atomic_output
from tradeops.store import AuditEntry, session_for
from tasks.audit.chain import first_break, walk
from tradeops.store.canonical import row_of_entry
from tradeops.store.records import GENESIS_HASH


def export_audit_trail(store_url: str, out_path: Path) -> dict:
    with session_for(store_url) as session, atomic_output(out_path) as handle:
        count, head = 0, GENESIS_HASH
        for entry in session.exec(select(AuditEntry).order_by(AuditEntry.id)):
            handle.write((json.dumps(entry.model_dump(mode="json"), sort_keys=True) + "\n").encode())
            count, head = count + 1, entry.entry_hash
    return {"entries": count, "head": head}


def _export_rows(path: Path):
    with open(path) as handle:
        for line in handle:
            yield row_of_entry(AuditEntry.model_validate(json.loads(line)))


def check_audit_export(path: Path) -> dict:
    """Recompute the exported chain with the audit verifier's walk (tasks/audit/chain.py), streamed;
    BackupError names the first entry that does not hold and how (modified, deleted, ...)."""
    result = walk(_export_rows(path), GENESIS_HASH)
    if result.broken is not None:
        _, problem = first_break(_export_rows(path), GENESIS_HASH)  # the file again, to classify the break
        raise BackupError(f"audit export {Path(path).name}: {problem.message}")
    return {"entries": result.checked, "head": result.head}
