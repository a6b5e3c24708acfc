"""SOX 404 for a period: who did what, what changed, what was approved, what failed, and whether
the audit chain itself still holds. Counted with GROUP BY in the ops store, not in Python: one
scan of the period (parallel on PostgreSQL) groups it by operation, user and strategy, and the
report's tables are sums over those few groups (bench/compliance_report.py, 1,000,000 entries)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import case, func
from sqlmodel import select

from tasks.compliance.period import Period
from tradeops.store import AuditEntry, session_for

STRATEGY_OPERATIONS = ("strategy_version", "strategy_promote", "strategy_rollback")
APPROVAL_OPERATIONS = ("strategy_approve",)
FAILED_LISTED = 500  # failed operations listed one by one; all are counted


@dataclass
class SoxReport:
    period: str
    total: int = 0
    failed: int = 0
    by_operation: list[dict] = field(default_factory=list)
    by_user: list[dict] = field(default_factory=list)
    strategies_modified: list[dict] = field(default_factory=list)
    approvals: list[dict] = field(default_factory=list)
    failed_operations: list[dict] = field(default_factory=list)
    chain: dict = field(default_factory=dict)


def _in(period: Period, through_id: int | None = None):
    """The period's entries; with `through_id`, only those up to that entry (the chain head the
    report states), so entries appended while it is built are not counted."""
    inside = (AuditEntry.timestamp >= period.start) & (AuditEntry.timestamp < period.end)
    return inside if through_id is None else inside & (AuditEntry.id <= through_id)


@dataclass(frozen=True)
class _Group:
    """The period's entries of one operation, user and strategy: how many, how many failed."""

    operation: str
    user: str
    strategy: str | None
    count: int
    failed: int


def sox_report(store_url: str, period: Period, through_id: int | None = None) -> SoxReport:
    report = SoxReport(period.label)
    window = _in(period, through_id)
    with session_for(store_url) as session:
        groups = _grouped(session, window)
        report.by_operation = _totals(groups, lambda g: g.operation)
        report.by_user = _totals(groups, lambda g: g.user)
        report.strategies_modified = _strategies_modified(groups)
        if any(g.operation in APPROVAL_OPERATIONS for g in groups):
            rows = session.exec(select(AuditEntry).where(window, AuditEntry.operation.in_(APPROVAL_OPERATIONS))
                                .order_by(AuditEntry.id)).all()
            report.approvals = [_entry(e) for e in rows]
        if any(g.failed for g in groups):
            rows = session.exec(select(AuditEntry).where(window, AuditEntry.success.is_(False))
                                .order_by(AuditEntry.id).limit(FAILED_LISTED)).all()
            report.failed_operations = [_entry(e) for e in rows]
    report.total = sum(r["count"] for r in report.by_operation)
    report.failed = sum(r["failed"] for r in report.by_operation)
    return report


def sox_report_with_chain(store_url: str, period: Period, verify: Callable[[], dict]) -> SoxReport:
    """sox_report with `chain` filled by `verify()`, the counts taken meanwhile on their own
    connection: with 1,000,000 entries they hide behind most of the chain walk."""
    with ThreadPoolExecutor(1) as pool:
        counting = pool.submit(sox_report, store_url, period)
        chain = verify()
        report = counting.result()
    report.chain = chain
    return report


def _grouped(session, window) -> list[_Group]:  # noqa: ANN001
    """The one pass over the period's entries; everything counted in the report is summed from it."""
    failed = func.sum(case((AuditEntry.success.is_(False), 1), else_=0))
    columns = (AuditEntry.operation, AuditEntry.user, AuditEntry.strategy_name)
    rows = session.exec(select(*columns, func.count(), failed).where(window).group_by(*columns)).all()
    return [_Group(operation, user, strategy, count, int(bad or 0)) for operation, user, strategy, count, bad in rows]


def _totals(groups: list[_Group], name_of) -> list[dict]:  # noqa: ANN001
    """Counts and failures per name, most frequent first, then by name."""
    totals: dict[str, list[int]] = {}
    for group in groups:
        total = totals.setdefault(name_of(group), [0, 0])
        total[0] += group.count
        total[1] += group.failed
    return [{"name": name, "count": count, "failed": failed}
            for name, (count, failed) in sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))]


def _strategies_modified(groups: list[_Group]) -> list[dict]:
    """Successful strategy operations per strategy and operation, by strategy (unnamed last), operation."""
    counts: dict[tuple[str | None, str], int] = {}
    for group in groups:
        if group.operation in STRATEGY_OPERATIONS and group.count > group.failed:
            key = (group.strategy, group.operation)
            counts[key] = counts.get(key, 0) + group.count - group.failed
    ordered = sorted(counts.items(), key=lambda item: (item[0][0] is None, item[0][0] or "", item[0][1]))
    return [{"strategy": strategy, "operation": operation, "count": n} for (strategy, operation), n in ordered]


def _entry(entry: AuditEntry) -> dict:
    return {"id": entry.id, "timestamp": entry.timestamp.isoformat(), "operation": entry.operation,
            "user": entry.user, "strategy": entry.strategy_name, "version": entry.version,
            "success": entry.success, "flow_run_id": entry.flow_run_id, "details": json.loads(entry.details or "{}")}
