"""Incidents (runbooks 003 and 004): stored with a timeline, acknowledged, resolved. The markdown
(post-mortem, report) lives in `tasks.incidents.postmortem` and `tasks.incidents.report`, imported
from there: they use tasks.reporting, which the metrics (and so this package) sit below."""

from tasks.incidents.lifecycle import (
    IncidentStateError, IncidentView, NoSuchIncident, OpenedIncident, TimelineEvent, acknowledge, add_event,
    add_note, get_incident, list_incidents, open_incident, record_on_open_incident, resolve, resolve_condition,
)
from tasks.incidents.severity import INCIDENT_SEVERITIES, IncidentSeverity, incident_severity

__all__ = [
    "INCIDENT_SEVERITIES", "IncidentSeverity", "IncidentStateError", "IncidentView", "NoSuchIncident",
    "OpenedIncident", "TimelineEvent", "acknowledge", "add_event", "add_note", "get_incident", "incident_severity",
    "list_incidents", "open_incident", "record_on_open_incident",
    "resolve", "resolve_condition",
]
