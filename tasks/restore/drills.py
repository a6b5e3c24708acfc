"""DR drill records in the ops store, and the RTO/RPO trend the drill report shows."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import select

from tasks.reporting import markdown_table
from tradeops.store import DrDrill, session_for
from tradeops.store.records import current_flow_run_id

TREND_DRILLS = 12  # the last three years of quarterly drills


def record_drill(store_url: str, environment: str, set_id: str | None, started_at: datetime,
                 finished_at: datetime, rto_seconds: float | None, rpo_seconds: float | None, passed: bool,
                 targets: list[dict]) -> None:
    with session_for(store_url) as session:
        session.add(DrDrill(flow_run_id=current_flow_run_id(), environment=environment, set_id=set_id,
                            started_at=started_at, finished_at=finished_at, rto_seconds=rto_seconds,
                            rpo_seconds=rpo_seconds, passed=passed, targets_json=json.dumps(targets)))
        session.commit()


def drill_history(store_url: str, environment: str, limit: int = TREND_DRILLS) -> list[DrDrill]:
    with session_for(store_url) as session:
        rows = session.exec(select(DrDrill).where(DrDrill.environment == environment)
                            .order_by(DrDrill.started_at.desc()).limit(limit)).all()
    return list(reversed(rows))


def trend_markdown(drills: list[DrDrill]) -> str:
    """Past drills, oldest first, with RTO drawn as a bar so a drift shows at a glance."""
    longest = max((d.rto_seconds or 0 for d in drills), default=0) or 1
    rows = [(f"{d.started_at:%Y-%m-%d %H:%M}", d.set_id or "", _hours(d.rpo_seconds),
             f"{d.rto_seconds:.1f}" if d.rto_seconds is not None else "", "█" * max(1, round(20 * (d.rto_seconds or 0) / longest)),
             "passed" if d.passed else "FAILED") for d in drills]
    return markdown_table(["drill", "set", "RPO (h)", "RTO (s)", "RTO", "result"], rows)


def _hours(seconds: float | None) -> str:
    return f"{seconds / 3600:.1f}" if seconds is not None else ""
