"""The last health-check run's measurements and grades (disk, memory, connections, freshness...)."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import Metric
from sqlmodel import select

from tasks.metrics.families import family
from tasks.metrics.names import HEALTH_GRADES
from tradeops.store import HealthResult, session_for


def latest_health_results(store_url: str, environment: str) -> list[HealthResult]:
    """The rows of the newest health-check run (by flow run id: read through its index)."""
    with session_for(store_url) as session:
        newest = session.exec(select(HealthResult.flow_run_id).where(HealthResult.environment == environment)
                              .order_by(HealthResult.id.desc()).limit(1)).first()
        if newest is None:
            return []
        return list(session.exec(select(HealthResult).where(HealthResult.flow_run_id == newest,
                                                            HealthResult.environment == environment)).all())


def health_families(store_url: str, environment: str) -> Iterator[Metric]:
    value, grade = family("tradeops_health_check_value"), family("tradeops_health_check_status")
    rows = {(r.target, r.check): r for r in latest_health_results(store_url, environment)}  # one series each
    for (_, _), row in sorted(rows.items()):
        if row.value is not None:
            value.add_metric([environment, row.target, row.check], row.value)
        if row.status in HEALTH_GRADES:
            grade.add_metric([environment, row.target, row.check], HEALTH_GRADES[row.status])
    yield from (value, grade)
