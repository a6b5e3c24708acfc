"""Incidents by severity, how long they took to be acknowledged and resolved, and remediations."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import Metric
from sqlalchemy import func
from sqlmodel import select

from tasks.incidents.severity import INCIDENT_SEVERITIES
from tasks.metrics.families import Tally, family, utc
from tasks.metrics.names import INCIDENT_BUCKETS
from tradeops.store import Incident, RemediationAttempt, session_for


def incident_families(store_url: str, environment: str) -> Iterator[Metric]:
    with session_for(store_url) as session:
        rows = session.exec(select(Incident.severity, Incident.status, Incident.opened_at, Incident.acknowledged_at,
                                   Incident.resolved_at).where(Incident.environment == environment)).all()
        attempts = session.exec(select(RemediationAttempt.action, RemediationAttempt.outcome, func.count())
                                .where(RemediationAttempt.environment == environment)
                                .group_by(RemediationAttempt.action, RemediationAttempt.outcome)).all()
    opened = family("tradeops_incidents_open")
    ack, resolve = family("tradeops_incident_acknowledge_seconds"), family("tradeops_incident_resolve_seconds")
    for severity in INCIDENT_SEVERITIES:  # every severity shows, 0 when none is open
        mine = [r for r in rows if r[0] == severity]
        opened.add_metric([environment, severity], sum(r[1] != "resolved" for r in mine))
        for metric, column in ((ack, 3), (resolve, 4)):
            tally = Tally(INCIDENT_BUCKETS)
            for row in mine:
                if row[column] is not None:
                    tally.observe((utc(row[column]) - utc(row[2])).total_seconds())
            metric.add_metric([environment, severity], tally.buckets(), tally.total)
    done = family("tradeops_remediations_total")
    for action, outcome, n in sorted(attempts):
        done.add_metric([environment, action, outcome], n)
    yield from (opened, ack, resolve, done)
