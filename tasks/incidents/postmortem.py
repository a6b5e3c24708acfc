"""A post-mortem draft in the shape of runbook 003's "Incident Response Checklist" (initial
response, investigation, resolution, post-incident) and runbook 004's "Post-Incident" (document
timeline and actions, root cause analysis, follow-up tickets), filled from the incident's timeline.
What only people know (root cause, lessons, action items) is left as prompts for them."""

from __future__ import annotations

from tasks.incidents.lifecycle import IncidentView
from tasks.reporting import markdown_table

KIND_TITLE = {"opened": "opened", "alert": "alert", "remediation": "remediation", "escalation": "escalation",
              "ack": "acknowledged", "note": "note", "resolved": "resolved"}


def _minutes(seconds: float | None) -> str:
    return "not yet" if seconds is None else f"{seconds / 60:.1f} min"


def postmortem_markdown(incident: IncidentView) -> str:
    events = incident.timeline
    remediations = [e for e in events if e.kind == "remediation"]
    notes = [e for e in events if e.kind == "note"]
    alerts = [e for e in events if e.kind in ("alert", "escalation")]
    responded = "met" if not incident.response_breached else "MISSED"
    lines = [
        f"# Post-mortem: incident {incident.id} ({incident.severity} / {incident.sev}) {incident.title}",
        "",
        markdown_table(["field", "value"], [
            ("environment", incident.environment),
            ("condition", incident.condition_key),
            ("severity", f"{incident.severity} ({incident.sev})"),
            ("status", incident.status),
            ("opened", f"{incident.opened_at} by {incident.opened_by}"),
            ("acknowledged", f"{incident.acknowledged_at} by {incident.acknowledged_by}"
             if incident.acknowledged_at else "no"),
            ("resolved", f"{incident.resolved_at} by {incident.resolved_by}" if incident.resolved_at else "no"),
            ("time to acknowledge", f"{_minutes(incident.seconds_to_acknowledge)} (target by "
                                    f"{incident.response_due_at}: {responded})"),
            ("time to resolve", f"{_minutes(incident.seconds_to_resolve)} (target by {incident.resolution_due_at})"),
            ("opening flow run", incident.flow_run_id or "none"),
        ]),
        "",
        "## Timeline",
        "",
        markdown_table(["time (UTC)", "event", "actor", "flow run", "what"],
                       [(e.at, KIND_TITLE.get(e.kind, e.kind), e.actor, e.flow_run_id or "", e.text)
                        for e in events]),
        "",
        "## Initial response (first 15 minutes)",
        "",
        f"- Acknowledged: {incident.acknowledged_at or 'not acknowledged'}"
        + (f" by {incident.acknowledged_by}" if incident.acknowledged_by else ""),
        f"- Alerts received: {len(alerts)}",
        "- Impact scope: _to fill_",
        "",
        "## Investigation",
        "",
        *([f"- {e.at} {e.actor}: {e.text}" for e in notes] or ["- no notes recorded"]),
        "- Root cause: _to fill_",
        "",
        "## Resolution",
        "",
        *([f"- {e.at} {e.text}" for e in remediations] or ["- no automatic remediation recorded"]),
        f"- Resolved: {incident.resolved_at or 'not yet'}" + (f" by {incident.resolved_by}" if incident.resolved_by
                                                              else ""),
        "",
        "## Post-incident",
        "",
        "- Lessons learned: _to fill_",
        "- Procedures to update: _to fill_",
        "- Stakeholders informed: _to fill_",
        "- Action items (follow-up tickets): _to fill_",
        "",
    ]
    return "\n".join(lines)
