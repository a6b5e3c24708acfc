"""Alerts tradeops delivered (one row per alert, per run that sent it), by severity."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import Metric
from sqlalchemy import func
from sqlmodel import select

from tasks.metrics.families import family
from tradeops.store import AlertSent, session_for


def alert_families(store_url: str, environment: str) -> Iterator[Metric]:
    with session_for(store_url) as session:
        rows = session.exec(select(AlertSent.severity, func.count()).where(AlertSent.environment == environment)
                            .group_by(AlertSent.severity)).all()
    sent = family("tradeops_alerts_sent_total")
    for severity, n in sorted(rows):
        sent.add_metric([environment, severity], n)
    yield sent
