"""Plain-text rendering of a flow run's result for the terminal."""

from __future__ import annotations

import json
from typing import Any

# Which list in a result to print as rows, and which fields make a row (--json prints everything).
ROW_FIELDS = {
    "checks": ("status", "target", "check", "detail"),
    "artifacts": ("status", "target", "kind", "size", "reused_from", "offsite_key", "problem"),
    "certificates": ("status", "name", "days_left", "hostname", "chain", "action"),
    "experiments": ("experiment", "decision", "rule", "failure"),
}
# Lists of lists (log-archival's directories) print as counts.
COUNTED = {"directories": ("target", ("rotated", "archived", "uploaded", "deleted_local", "deleted_offsite",
                                      "waiting", "failures"))}


def render_result(flow_name: str, state: str, message: str | None, result: dict[str, Any],
                  flow_run_id: str | None) -> str:
    lines = [f"{flow_name}: {state}" + (f" (flow run {flow_run_id})" if flow_run_id else "")]
    if state != "Completed" and message:
        lines.append(f"  {message}")
    shown = False
    for key, fields in ROW_FIELDS.items():
        if isinstance(result.get(key), list):
            shown = True
            for row in result[key]:
                cells = [_cell(row[f]) for f in fields if row.get(f) not in (None, "")]
                lines.append("  " + "  ".join(cells))
    for key, (name_field, counted) in COUNTED.items():
        if isinstance(result.get(key), list):
            shown = True
            for row in result[key]:
                counts = "  ".join(f"{field.replace('_', ' ')} {len(row.get(field) or [])}" for field in counted)
                lines.append(f"  {row[name_field]}  {counts}")
    if not shown and result:
        lines.append(json.dumps(result, indent=2, default=str))
    for key in ("set_dir", "report"):
        if result.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {result[key]}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)
