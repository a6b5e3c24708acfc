"""Incidents (runbooks 003 and 004): stored with a timeline, acknowledged, resolved, post-mortem."""

from tasks.incidents.lifecycle import (
    IncidentStateError, IncidentView, NoSuchIncident, OpenedIncident, TimelineEvent, acknowledge, add_event,
    add_note, get_incident, list_incidents, open_incident, record_on_open_incident, resolve, resolve_condition,
)
from tasks.incidents.postmortem import postmortem_markdown
from tasks.incidents.report import incidents_markdown
from tasks.incidents.severity import INCIDENT_SEVERITIES, IncidentSeverity, incident_severity

__all__ = [
    "INCIDENT_SEVERITIES", "IncidentSeverity", "IncidentStateError", "IncidentView", "NoSuchIncident",
    "OpenedIncident", "TimelineEvent", "acknowledge", "add_event", "add_note", "get_incident", "incident_severity",
    "incidents_markdown", "list_incidents", "open_incident", "postmortem_markdown", "record_on_open_incident",
    "resolve", "resolve_condition",
]
