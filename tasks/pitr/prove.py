"""A point-in-time restore and its proof, in one call: what `pitr-restore` runs after its access
check, and what the DR drill runs to prove the recovery point it reaches (rows written up to a
minute before the chosen time are there)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from blocks import DatabaseTarget, OffsiteStorage
from tasks.pitr import prove_rpo_task, restore_to_time_task
from tasks.pitr.restore import RECOVERY_TIMEOUT_SECONDS, PitrError, PitrResult, stop_restored
from tasks.pitr.rpo import RPO_WINDOW, RpoProof


def restore_and_prove(storage: OffsiteStorage, environment: str, db: DatabaseTarget, target_time: datetime | None,
                      folder: Path, inclusive: bool = True, keep_running: bool = False,
                      rpo_window: timedelta = RPO_WINDOW,
                      timeout: float = RECOVERY_TIMEOUT_SECONDS,
                      progress: Callable[[float], None] | None = None) -> tuple[PitrResult, RpoProof | None]:
    """Restore `db` to `target_time` (None: latest) into a scratch cluster under `folder`, run its
    probe query, prove the RPO on its freshness table (with a target time), then stop and remove
    the cluster unless `keep_running` and everything passed."""
    source_url = db.url.get_secret_value()
    try:
        result = restore_to_time_task(storage, environment, db.target, source_url, target_time, folder, inclusive,
                                      keep_running=True, timeout=timeout, probe_query=db.probe_query,
                                      progress=progress)
    except Exception as exc:  # noqa: BLE001 - no base backup, offsite unreadable: the run reports it
        reason = str(exc) if isinstance(exc, PitrError) else f"{type(exc).__name__}: {exc}"
        return PitrResult(db.target, target_time.isoformat() if target_time else "latest", inclusive,
                          problems=[reason]), None
    rpo = None
    if result.running and target_time is not None and db.freshness_table:
        try:
            rpo = prove_rpo_task(source_url, result.database_url, db.freshness_table, db.freshness_column,
                                 target_time, rpo_window)
        except Exception as exc:  # noqa: BLE001 - the restore's problem, named
            result.problems.append(f"RPO proof failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
        if rpo is not None and not rpo.passed:
            result.problems.append(f"RPO not met: {rpo.describe()}")
    if result.running and not (keep_running and result.passed):
        stop_restored(result)
    return result, rpo
