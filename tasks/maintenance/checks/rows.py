"""Fetching a named query's rows as dicts of plain Python values, from any psycopg2 cursor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from psycopg2 import sql


def plain(value: Any) -> Any:
    """numeric arrives as Decimal: an int when whole, else a float, so findings compare and serialise simply."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def fetch_rows(cur, query: str | sql.Composable, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Works with plain and dict cursors alike: the column names come from `cursor.description`."""
    cur.execute(query, params)
    names = [column[0] for column in cur.description]
    rows = []
    for row in cur.fetchall():
        values = row.values() if isinstance(row, Mapping) else row
        rows.append({name: plain(value) for name, value in zip(names, values)})
    return rows


def human_bytes(size: float | int | None) -> str:
    if size is None:
        return "unknown size"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns
