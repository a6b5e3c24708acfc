"""The incident report artifact: the environment's open incidents, and what this run changed."""

from __future__ import annotations

from tasks.incidents.lifecycle import IncidentView
from tasks.reporting import markdown_table


def incidents_markdown(environment: str, open_incidents: list[IncidentView], opened: list[IncidentView],
                       resolved: list[IncidentView]) -> str:
    parts = [f"# Incidents: {environment}",
             f"open: {len(open_incidents)} · opened by this run: {len(opened)} · resolved by this run: {len(resolved)}"]
    if open_incidents:
        parts.append(markdown_table(
            ["id", "severity", "status", "condition", "opened", "respond by", "title"],
            [(i.id, i.severity, i.status, i.condition_key, i.opened_at, i.response_due_at, i.title)
             for i in open_incidents]))
    if resolved:
        parts.append("## Resolved by this run\n\n" + markdown_table(
            ["id", "severity", "condition", "resolved"], [(i.id, i.severity, i.condition_key, i.resolved_at)
                                                          for i in resolved]))
    return "\n\n".join(parts)
