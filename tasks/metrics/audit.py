"""Runbook 000's Git and experiment timings, from the audit trail: every strategy command and
experiment lifecycle command is an audit entry with its `execution_time_ms`.

The trail is append-only (hash-chained, ids handed out under the chain lock in commit order), so
the counts are kept as running totals: each collection aggregates, in SQL, only the entries after
the last one it saw. A long-running `metrics serve` reads each entry once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from prometheus_client.core import Metric
from sqlalchemy import case, func, or_
from sqlmodel import select

from tasks.metrics.families import Tally, family
from tasks.metrics.names import CAPITAL_ALLOCATION_BUCKETS, EXPERIMENT_CREATION_BUCKETS, GIT_BUCKETS
from tradeops.store import AuditEntry, session_for

GIT_PREFIX = "strategy_"  # strategy version/versions/diff/approve/promote/rollback act on the repository
TIMED_OPERATIONS = {  # operation -> (metric, buckets); successful entries only
    "experiment_create": ("experiment_creation_duration_seconds", EXPERIMENT_CREATION_BUCKETS),
    "experiment_start": ("capital_allocation_duration_seconds", CAPITAL_ALLOCATION_BUCKETS),
}
BOUNDS = tuple(sorted(set(GIT_BUCKETS).union(*(b for _, b in TIMED_OPERATIONS.values()))))


@dataclass
class _Totals:
    entries: int = 0
    timed: int = 0
    milliseconds: float = 0.0
    within: dict[float, int] = field(default_factory=lambda: dict.fromkeys(BOUNDS, 0))  # timed entries <= bound

    def tally(self, bounds: tuple[float, ...], into: Tally | None = None) -> Tally:
        into = into or Tally(bounds)
        into.add([self.within[b] for b in bounds], self.timed, self.milliseconds / 1000)
        return into


class AuditTimings:
    """Running totals per (operation, success) over the audit entries seen so far."""

    def __init__(self) -> None:
        self.last_id = 0
        self.totals: dict[tuple[str, bool], _Totals] = {}

    def refresh(self, store_url: str) -> None:
        ms = AuditEntry.execution_time_ms
        with session_for(store_url) as session:
            head = session.exec(select(func.max(AuditEntry.id))).one() or 0
            if head <= self.last_id:
                return
            rows = session.exec(
                select(AuditEntry.operation, AuditEntry.success, func.count(), func.count(ms),
                       func.coalesce(func.sum(ms), 0),
                       *(func.sum(case((ms <= bound * 1000, 1), else_=0)) for bound in BOUNDS))
                .where(AuditEntry.id > self.last_id, AuditEntry.id <= head,
                       or_(AuditEntry.operation.startswith(GIT_PREFIX, autoescape=True),
                           AuditEntry.operation.in_(list(TIMED_OPERATIONS))))
                .group_by(AuditEntry.operation, AuditEntry.success)).all()
        for operation, success, entries, timed, milliseconds, *within in rows:
            totals = self.totals.setdefault((operation, bool(success)), _Totals())
            totals.entries += entries
            totals.timed += timed
            totals.milliseconds += float(milliseconds or 0)
            for bound, n in zip(BOUNDS, within):
                totals.within[bound] += int(n or 0)
        self.last_id = head

    def read(self, store_url: str, environment: str) -> Iterator[Metric]:
        self.refresh(store_url)
        return self.families(environment)

    def families(self, environment: str) -> Iterator[Metric]:
        operations, durations = family("git_operations_total"), family("git_operation_duration_seconds")
        git: dict[str, Tally] = {}
        for (operation, success), totals in sorted(self.totals.items()):
            if not operation.startswith(GIT_PREFIX):
                continue
            kind = operation[len(GIT_PREFIX):]
            operations.add_metric([environment, kind, "success" if success else "failure"], totals.entries)
            git[kind] = totals.tally(GIT_BUCKETS, git.get(kind))
        for kind, tally in git.items():
            durations.add_metric([environment, kind], tally.buckets(), tally.total)
        yield operations
        yield durations
        for operation, (name, bounds) in TIMED_OPERATIONS.items():
            timings = family(name)
            tally = self.totals.get((operation, True), _Totals()).tally(bounds)
            timings.add_metric([environment], tally.buckets(), tally.total)
            yield timings
