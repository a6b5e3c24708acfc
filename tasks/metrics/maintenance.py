"""How long the last db-maintenance took per database, and per kind of statement (VACUUM, ANALYZE,
REINDEX, REFRESH...), from its run summary; runbook 001 budgets "~15-30 minutes"."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import Metric

from tasks.metrics.families import epoch, family
from tasks.metrics.flow_runs import latest_result


def statement_kind(statement: str) -> str:
    """`VACUUM (ANALYZE) public.orders` -> VACUUM; `REFRESH MATERIALIZED VIEW ...` -> REFRESH."""
    words = statement.split()
    return words[0].upper() if words else "UNKNOWN"


def maintenance_families(store_url: str, environment: str) -> Iterator[Metric]:
    total, per_kind = (family("tradeops_maintenance_duration_seconds"),
                       family("tradeops_maintenance_step_duration_seconds"))
    ended = family("tradeops_maintenance_last_timestamp_seconds")
    found = latest_result(store_url, environment, "db-maintenance")
    if found:
        recorded, result = found
        ended.add_metric([environment], epoch(recorded))
        for database in result.get("databases") or []:
            kinds: dict[str, float] = {}
            for step in database.get("steps") or []:
                kind = statement_kind(str(step.get("statement", "")))
                kinds[kind] = kinds.get(kind, 0.0) + float(step.get("seconds") or 0)
            target = str(database.get("target", ""))
            total.add_metric([environment, target], round(sum(kinds.values()), 3))
            for kind, seconds in sorted(kinds.items()):
                per_kind.add_metric([environment, target, kind], round(seconds, 3))
    yield from (total, per_kind, ended)
