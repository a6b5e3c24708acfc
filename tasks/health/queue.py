"""Queue depth (runbook 004 "Key Metrics to Monitor": Queue Depth >500 warning, >1000 critical;
runbook 001 "Check Levels": queue depth is part of the deep check).

The queue is a table of the platform database named by `[[databases]] queue_table`, with an
`enqueued_at` timestamp and a `processed_at` one that stays NULL until the item is processed
(the sandbox's `order_queue`). Its depth is the number of unprocessed rows; the age of the oldest
of them says whether the queue drains at all (a short queue that never moves is a problem too).
"""

from __future__ import annotations

from datetime import datetime

from tasks.databases import scalar
from tasks.health.result import CheckResult, as_utc, failed, graded
from tasks.health.thresholds import Threshold

ENQUEUED_COLUMN = "enqueued_at"
PROCESSED_COLUMN = "processed_at"
DEPTH = f"SELECT count(*) FROM {{table}} WHERE {PROCESSED_COLUMN} IS NULL"
OLDEST_UNPROCESSED = f"SELECT min({ENQUEUED_COLUMN}) FROM {{table}} WHERE {PROCESSED_COLUMN} IS NULL"


def check_queue(conn, target: str, table: str, depth_threshold: Threshold, age_threshold: Threshold,
                now: datetime) -> list[CheckResult]:
    """`queue_depth` (unprocessed rows of `table`) and `queue_oldest_age` (seconds the oldest of them
    has waited). A table that cannot be read (missing, or without the two columns) is one failed
    `queue_depth` finding that says so; the age is then not measured."""
    try:
        depth = int(scalar(conn, DEPTH.format(table=table)))
        oldest = scalar(conn, OLDEST_UNPROCESSED.format(table=table))
    except Exception as exc:  # noqa: BLE001 - a missing table or column is a finding, not a crash
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [failed(target, "queue_depth",
                       f"queue {table} cannot be read ({reason}); it needs columns {ENQUEUED_COLUMN} and "
                       f"{PROCESSED_COLUMN} ([[databases]] queue_table)")]
    results = [graded(target, "queue_depth", depth_threshold, depth, f"queue {table}: {depth} unprocessed")]
    age = 0.0 if oldest is None else max(0.0, (now - as_utc(oldest)).total_seconds())
    what = (f"queue {table}: nothing waiting" if oldest is None
            else f"queue {table}: oldest unprocessed item enqueued {age:.0f} s ago")
    results.append(graded(target, "queue_oldest_age", age_threshold, age, what))
    return results
