"""Incident severities as data: runbook 004 "Incident Classification" (P1-P4, response times) and
runbook 003 "Severity Classification" (SEV-1..4, response and resolution times), which agree on the
response times; the resolution times are 003's. An alert's severity (critical, high, medium, low,
runbook 001 "Alert Channels") maps to the incident class of the same rank."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class IncidentSeverity:
    name: str  # P1..P4
    sev: str  # SEV-1..SEV-4
    alert_severity: str  # critical, high, medium, low
    definition: str
    respond_within: timedelta
    resolve_within: timedelta


INCIDENT_SEVERITIES: dict[str, IncidentSeverity] = {
    s.name: s for s in (
        IncidentSeverity("P1", "SEV-1", "critical", "complete service outage, data loss or corruption",
                         timedelta(minutes=15), timedelta(hours=4)),
        IncidentSeverity("P2", "SEV-2", "high", "major functionality impaired",
                         timedelta(hours=1), timedelta(hours=8)),
        IncidentSeverity("P3", "SEV-3", "medium", "minor functionality impaired, degraded performance",
                         timedelta(hours=4), timedelta(hours=24)),
        IncidentSeverity("P4", "SEV-4", "low", "no immediate impact",
                         timedelta(hours=24), timedelta(hours=72)),
    )
}
BY_ALERT_SEVERITY: dict[str, IncidentSeverity] = {s.alert_severity: s for s in INCIDENT_SEVERITIES.values()}


def incident_severity(name_or_alert_severity: str) -> IncidentSeverity:
    """P1..P4, SEV-1..4 or an alert severity (critical..low); ValueError naming the choices."""
    value = name_or_alert_severity.strip()
    for severity in INCIDENT_SEVERITIES.values():
        if value.upper() in (severity.name, severity.sev) or value.lower() == severity.alert_severity:
            return severity
    raise ValueError(f"unknown incident severity {name_or_alert_severity!r}; give P1-P4, SEV-1..SEV-4 or "
                     "critical/high/medium/low")
