"""An incident's life in the ops store: opened (once per condition while not resolved), alerts
and remediations added to its timeline, acknowledged, annotated, resolved. Plain functions; each
returns the incident as an `IncidentView` (with its timeline when asked)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlmodel import Session, select

from tasks.incidents.severity import INCIDENT_SEVERITIES, incident_severity
from tradeops.clock import utcnow
from tradeops.errors import UsageError
from tradeops.store.engine import session_for
from tradeops.store.models import Incident, IncidentEvent

OPEN_STATUSES = ("open", "acknowledged")
EVENT_KINDS = ("opened", "alert", "remediation", "escalation", "ack", "note", "resolved")


class NoSuchIncident(UsageError):
    """An incident id the environment does not have (exit 2)."""


class IncidentStateError(UsageError):
    """Acknowledging or resolving an incident in a state that does not allow it (exit 2)."""


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment else None


@dataclass(frozen=True)
class TimelineEvent:
    at: str
    kind: str
    actor: str
    flow_run_id: str | None
    text: str


@dataclass(frozen=True)
class IncidentView:
    id: int
    environment: str
    condition_key: str
    title: str
    severity: str
    sev: str
    status: str
    opened_at: str
    opened_by: str
    response_due_at: str
    resolution_due_at: str
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolved_at: str | None
    resolved_by: str | None
    flow_run_id: str | None
    seconds_to_acknowledge: float | None
    seconds_to_resolve: float | None
    response_breached: bool  # not acknowledged within the response target (so far, when still open)
    timeline: list[TimelineEvent] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _view(row: Incident, events: list[IncidentEvent] | None = None, now: datetime | None = None) -> IncidentView:
    opened = _aware(row.opened_at)
    acked, resolved = _aware(row.acknowledged_at), _aware(row.resolved_at)
    responded = acked or resolved or (now or utcnow())
    return IncidentView(
        id=row.id, environment=row.environment, condition_key=row.condition_key, title=row.title,
        severity=row.severity, sev=INCIDENT_SEVERITIES[row.severity].sev, status=row.status,
        opened_at=_iso(opened), opened_by=row.opened_by, response_due_at=_iso(row.response_due_at),
        resolution_due_at=_iso(row.resolution_due_at), acknowledged_at=_iso(acked),
        acknowledged_by=row.acknowledged_by, resolved_at=_iso(resolved), resolved_by=row.resolved_by,
        flow_run_id=row.flow_run_id,
        seconds_to_acknowledge=(acked - opened).total_seconds() if acked else None,
        seconds_to_resolve=(resolved - opened).total_seconds() if resolved else None,
        response_breached=responded > _aware(row.response_due_at),
        timeline=[TimelineEvent(_iso(e.at), e.kind, e.actor, e.flow_run_id, e.text) for e in events or []],
    )


def _event(session: Session, incident_id: int, kind: str, actor: str, text: str,
           flow_run_id: str | None, at: datetime) -> None:
    session.add(IncidentEvent(incident_id=incident_id, at=at, kind=kind, actor=actor, flow_run_id=flow_run_id,
                              text=text))


def open_incident_for(session: Session, environment: str, condition_key: str) -> Incident | None:
    return session.exec(select(Incident).where(
        Incident.environment == environment, Incident.condition_key == condition_key,
        Incident.status.in_(OPEN_STATUSES))).first()


@dataclass(frozen=True)
class OpenedIncident:
    incident: IncidentView
    created: bool  # False: the condition already had an open incident; the event was added to it


def open_incident(store_url: str, environment: str, condition_key: str, title: str, severity: str,
                  actor: str, flow_run_id: str | None = None, reason: str = "",
                  note_if_open: bool = True) -> OpenedIncident:
    """Open an incident for `condition_key`, or add `reason` to the one already open for it
    (unless `note_if_open` is False: then the open one is returned untouched)."""
    level = incident_severity(severity)
    now = utcnow()
    with session_for(store_url) as session:
        row = open_incident_for(session, environment, condition_key)
        if row is not None:
            if note_if_open:
                _event(session, row.id, "escalation", actor, reason or title, flow_run_id, now)
                session.commit()
            return OpenedIncident(_view(row), False)
        row = Incident(environment=environment, condition_key=condition_key, title=title, severity=level.name,
                       status="open", opened_at=now, opened_by=actor, flow_run_id=flow_run_id,
                       response_due_at=now + level.respond_within, resolution_due_at=now + level.resolve_within)
        session.add(row)
        session.flush()
        _event(session, row.id, "opened", actor,
               f"{level.name} ({level.sev}, {level.definition}): {title}" + (f"; {reason}" if reason else ""),
               flow_run_id, now)
        session.commit()
        session.refresh(row)
        return OpenedIncident(_view(row), True)


def add_event(store_url: str, incident_id: int, kind: str, actor: str, text: str,
              flow_run_id: str | None = None) -> None:
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown incident event kind {kind!r}")
    with session_for(store_url) as session:
        _event(session, incident_id, kind, actor, text, flow_run_id, utcnow())
        session.commit()


def record_on_open_incident(store_url: str, environment: str, condition_key: str, kind: str, actor: str,
                            text: str, flow_run_id: str | None = None) -> int | None:
    """Add an alert or remediation to the condition's open incident, if it has one; its id."""
    with session_for(store_url) as session:
        row = open_incident_for(session, environment, condition_key)
        if row is None:
            return None
        _event(session, row.id, kind, actor, text, flow_run_id, utcnow())
        session.commit()
        return row.id


def _load(session: Session, environment: str, incident_id: int) -> Incident:
    row = session.get(Incident, incident_id)
    if row is None or row.environment != environment:
        raise NoSuchIncident(f"incident {incident_id}: no such incident in environment {environment!r}")
    return row


def acknowledge(store_url: str, environment: str, incident_id: int, actor: str, note: str = "",
                flow_run_id: str | None = None) -> IncidentView:
    now = utcnow()
    with session_for(store_url) as session:
        row = _load(session, environment, incident_id)
        if row.status != "open":
            raise IncidentStateError(f"incident {incident_id} is {row.status}: only an open incident can be "
                                     "acknowledged")
        row.status, row.acknowledged_at, row.acknowledged_by = "acknowledged", now, actor
        session.add(row)
        _event(session, row.id, "ack", actor, note or "acknowledged", flow_run_id, now)
        session.commit()
        return get_incident(store_url, environment, incident_id)


def add_note(store_url: str, environment: str, incident_id: int, actor: str, text: str,
             flow_run_id: str | None = None) -> IncidentView:
    if not text.strip():
        raise UsageError("a note needs text")
    with session_for(store_url) as session:
        row = _load(session, environment, incident_id)
        _event(session, row.id, "note", actor, text, flow_run_id, utcnow())
        session.commit()
    return get_incident(store_url, environment, incident_id)


def resolve(store_url: str, environment: str, incident_id: int, actor: str, note: str = "",
            flow_run_id: str | None = None) -> IncidentView:
    now = utcnow()
    with session_for(store_url) as session:
        row = _load(session, environment, incident_id)
        if row.status == "resolved":
            raise IncidentStateError(f"incident {incident_id} is already resolved")
        row.status, row.resolved_at, row.resolved_by = "resolved", now, actor
        session.add(row)
        _event(session, row.id, "resolved", actor, note or "resolved", flow_run_id, now)
        session.commit()
    return get_incident(store_url, environment, incident_id)


def resolve_condition(store_url: str, environment: str, condition_key: str, actor: str, note: str,
                      flow_run_id: str | None = None) -> IncidentView | None:
    """The condition cleared: resolve its open incident, if any."""
    with session_for(store_url) as session:
        row = open_incident_for(session, environment, condition_key)
        incident_id = row.id if row else None
    if incident_id is None:
        return None
    return resolve(store_url, environment, incident_id, actor, note, flow_run_id)


def get_incident(store_url: str, environment: str, incident_id: int) -> IncidentView:
    with session_for(store_url) as session:
        row = _load(session, environment, incident_id)
        events = session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                              .order_by(IncidentEvent.at, IncidentEvent.id)).all()
        return _view(row, list(events))


def list_incidents(store_url: str, environment: str, statuses: tuple[str, ...] = (),
                   severity: str | None = None) -> list[IncidentView]:
    query = select(Incident).where(Incident.environment == environment)
    if statuses:
        query = query.where(Incident.status.in_(statuses))
    if severity:
        query = query.where(Incident.severity == incident_severity(severity).name)
    with session_for(store_url) as session:
        rows = session.exec(query.order_by(Incident.opened_at.desc(), Incident.id.desc())).all()
        return [_view(r) for r in rows]
