"""The last DR drill: did it pass, its RTO and RPO (runbooks 000 "Recovery Testing", 003 "Disaster
Recovery Testing"), and when it ran, so an overdue quarterly drill shows too."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import Metric
from sqlmodel import select

from tasks.metrics.families import epoch, family
from tradeops.store import DrDrill, session_for


def drill_families(store_url: str, environment: str) -> Iterator[Metric]:
    with session_for(store_url) as session:
        drill = session.exec(select(DrDrill).where(DrDrill.environment == environment)
                             .order_by(DrDrill.started_at.desc(), DrDrill.id.desc()).limit(1)).first()
    success, when = family("tradeops_dr_drill_success"), family("tradeops_dr_drill_last_timestamp_seconds")
    rto, rpo = family("tradeops_dr_drill_rto_seconds"), family("tradeops_dr_drill_rpo_seconds")
    if drill is not None:
        success.add_metric([environment], 1.0 if drill.passed else 0.0)
        when.add_metric([environment], epoch(drill.started_at))
        if drill.rto_seconds is not None:
            rto.add_metric([environment], drill.rto_seconds)
        if drill.rpo_seconds is not None:
            rpo.add_metric([environment], drill.rpo_seconds)
    yield from (success, when, rto, rpo)
