"""Plain-text rendering of a flow run's result for the terminal."""

from __future__ import annotations

import json
from typing import Any


def render_result(flow_name: str, state: str, message: str | None, result: dict[str, Any],
                  flow_run_id: str | None) -> str:
    lines = [f"{flow_name}: {state}" + (f" (flow run {flow_run_id})" if flow_run_id else "")]
    if state != "Completed" and message:
        lines.append(f"  {message}")
    checks = result.get("checks")
    if isinstance(checks, list):
        for check in checks:
            lines.append(f"  {check['status'].upper():<5} {check['target']:<28} {check['check']:<20} "
                         f"{check['detail']}")
    elif result:
        lines.append(json.dumps(result, indent=2, default=str))
    if result.get("report"):
        lines.append(f"  report: {result['report']}")
    return "\n".join(lines)
