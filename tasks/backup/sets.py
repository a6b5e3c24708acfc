"""A backup set's life on disk: staged under `.<set id>.partial`, renamed complete, swept if abandoned."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from tradeops.files import fsync_dir
from tradeops.store import BackupSet, session_for


def new_set_id(kind: str, now: datetime, run_id: str | None) -> str:
    """Sortable by time, unique per run: `20261123T020000Z-daily-1a2b3c4d`."""
    return f"{now:%Y%m%dT%H%M%SZ}-{kind}-{(run_id or uuid.uuid4().hex)[:8]}"


def staging_dir(root: Path, set_id: str) -> Path:
    return root / f".{set_id}.partial"


def finalize_set(staging: Path, final: Path) -> None:
    """The rename that makes a set exist: before it, readers see no set at all."""
    os.replace(staging, final)
    fsync_dir(final.parent)


def sweep_abandoned(root: Path, store_url: str, environment: str, current_set: str) -> list[str]:
    """Remove what runs that died left behind, and mark their catalog sets abandoned: staging
    folders, folders of sets renamed complete whose catalog row never said so (killed between
    the rename and the catalog), and sets a killed retention was deleting. The run lock
    guarantees none of them belongs to a running backup."""
    swept = [p.name for p in root.glob(".*.partial") if p.name != f".{current_set}.partial"]
    swept += [p.name for p in root.glob(".*.deleting")]
    with session_for(store_url) as session:
        unfinished = session.exec(select(BackupSet).where(
            BackupSet.environment == environment, BackupSet.status.in_(("pending", "abandoned", "failed")),
            BackupSet.set_id != current_set)).all()
        for backup_set in unfinished:
            if backup_set.status == "pending":
                backup_set.status = "abandoned"
                session.add(backup_set)
        session.commit()
    for backup_set in unfinished:
        if (root / backup_set.set_id).is_dir():  # whole-looking, but never catalogued complete
            doomed = root / f".{backup_set.set_id}.deleting"
            os.replace(root / backup_set.set_id, doomed)
            swept.append(backup_set.set_id)
    for name in swept:
        shutil.rmtree(root / (name if name.startswith(".") else f".{name}.deleting"), ignore_errors=True)
    return swept
