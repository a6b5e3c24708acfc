"""A backup set's life on disk: staged under `.<set id>.partial`, renamed complete, swept if abandoned."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from tasks.files import fsync_dir
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
    """Remove staging folders of runs that died and mark their catalog sets failed."""
    swept = [p.name for p in root.glob(".*.partial") if p.name != f".{current_set}.partial"]
    for name in swept:
        shutil.rmtree(root / name, ignore_errors=True)
    with session_for(store_url) as session:
        for backup_set in session.exec(select(BackupSet).where(
                BackupSet.environment == environment, BackupSet.status == "pending",
                BackupSet.set_id != current_set)).all():
            backup_set.status = "abandoned"
            session.add(backup_set)
        session.commit()
    return swept
