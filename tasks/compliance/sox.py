"""SOX 404 for a period: who did what, what changed, what was approved, what failed, and whether
the audit chain itself still holds. Counted with GROUP BY in the ops store, not in Python."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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


def _in(period: Period):
    return (AuditEntry.timestamp >= period.start) & (AuditEntry.timestamp < period.end)


def sox_report(store_url: str, period: Period) -> SoxReport:
    failed = func.sum(case((AuditEntry.success.is_(False), 1), else_=0))
    report = SoxReport(period.label)
    with session_for(store_url) as session:
        for column, target in ((AuditEntry.operation, report.by_operation), (AuditEntry.user, report.by_user)):
            rows = session.exec(select(column, func.count(), failed).where(_in(period))
                                .group_by(column).order_by(func.count().desc(), column)).all()
            target.extend({"name": name, "count": count, "failed": int(bad or 0)} for name, count, bad in rows)
        rows = session.exec(select(AuditEntry.strategy_name, AuditEntry.operation, func.count())
                            .where(_in(period), AuditEntry.operation.in_(STRATEGY_OPERATIONS),
                                   AuditEntry.success.is_(True))
                            .group_by(AuditEntry.strategy_name, AuditEntry.operation)
                            .order_by(AuditEntry.strategy_name, AuditEntry.operation)).all()
        report.strategies_modified = [{"strategy": s, "operation": op, "count": n} for s, op, n in rows]
        rows = session.exec(select(AuditEntry).where(_in(period), AuditEntry.operation.in_(APPROVAL_OPERATIONS))
                            .order_by(AuditEntry.id)).all()
        report.approvals = [_entry(e) for e in rows]
        rows = session.exec(select(AuditEntry).where(_in(period), AuditEntry.success.is_(False))
                            .order_by(AuditEntry.id).limit(FAILED_LISTED)).all()
        report.failed_operations = [_entry(e) for e in rows]
    report.total = sum(r["count"] for r in report.by_operation)
    report.failed = sum(r["failed"] for r in report.by_operation)
    return report


def _entry(entry: AuditEntry) -> dict:
    return {"id": entry.id, "timestamp": entry.timestamp.isoformat(), "operation": entry.operation,
            "user": entry.user, "strategy": entry.strategy_name, "version": entry.version,
            "success": entry.success, "flow_run_id": entry.flow_run_id, "details": json.loads(entry.details or "{}")}
