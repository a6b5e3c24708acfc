"""The audit trail in a backup set (runbook 000 weekly backup: "Backup audit logs").

Exported as JSON lines in chain order, each with its hashes, so the copy can be checked on its
own: every entry's hash recomputed, every link to the previous entry followed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlmodel import select

from tasks.backup.postgres import BackupError
from tasks.files import atomic_output
from tradeops.store import AuditEntry, session_for
from tradeops.store.records import GENESIS_HASH, canonical_audit_content


def export_audit_trail(store_url: str, out_path: Path) -> dict:
    with session_for(store_url) as session, atomic_output(out_path) as handle:
        count, head = 0, GENESIS_HASH
        for entry in session.exec(select(AuditEntry).order_by(AuditEntry.id)):
            handle.write((json.dumps(entry.model_dump(mode="json"), sort_keys=True) + "\n").encode())
            count, head = count + 1, entry.entry_hash
    return {"entries": count, "head": head}


def check_audit_export(path: Path) -> dict:
    """Recompute the exported chain; BackupError names the first entry that does not hold."""
    previous = GENESIS_HASH
    count = 0
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            entry = AuditEntry.model_validate(json.loads(line))
            if entry.prev_hash != previous:
                raise BackupError(f"audit export line {number} (id {entry.id}) does not link to the entry before it")
            if hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest() != entry.entry_hash:
                raise BackupError(f"audit export line {number} (id {entry.id}) does not match its hash")
            previous, count = entry.entry_hash, count + 1
    return {"entries": count, "head": previous}
