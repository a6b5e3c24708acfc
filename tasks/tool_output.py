"""What a failed command-line tool (pg_dump, pg_restore, git) said, in one line that keeps its
error: the lines that name the error come first, never cut off by what follows them (pg_dump
ends with the whole SQL query it was running)."""

from __future__ import annotations

import re

ERROR_LINE = re.compile(r"\b(error|fatal|panic)\b|^\S+: (detail|hint): ", re.IGNORECASE)
LIMIT = 600


def tool_error(output: str, limit: int = LIMIT) -> str:
    """The error lines of `output` joined with "; " (each cut at `limit`), else its last `limit`
    characters."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.search(line) and "Query was:" not in line]
    if not errors:
        text = " ".join(lines)
        return text if len(text) <= limit else "…" + text[-limit:]
    return "; ".join(line if len(line) <= limit else line[:limit] + "…" for line in errors)
