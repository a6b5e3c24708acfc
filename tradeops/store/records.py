"""Writing records: each one stamped with the current Prefect flow run id when there is one."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import text
from sqlmodel import Session, select

from tradeops.store.engine import session_for
from tradeops.store.models import AuditEntry, FlowRunSummary, HealthResult, utcnow

GENESIS_HASH = "0" * 64


def acting_user() -> str:
    """Who is acting: TRADEOPS_USER, else the login name (issue 7 brings roles on top)."""
    import getpass
    import os

    return os.environ.get("TRADEOPS_USER") or getpass.getuser()


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def save_health_results(url: str, environment: str, results: Iterable[Any]) -> int:
    run_id = current_flow_run_id()
    rows = [
        HealthResult(
            flow_run_id=run_id, environment=environment, target=r.target, check=r.check,
            status=r.status, value=r.value, unit=r.unit, detail=r.detail,
        )
        for r in results
    ]
    with session_for(url) as session:
        session.add_all(rows)
        session.commit()
    return len(rows)


def save_flow_summary(url: str, flow_name: str, environment: str, state: str, message: str,
                      summary_markdown: str, result: dict[str, Any]) -> None:
    with session_for(url) as session:
        session.add(FlowRunSummary(
            flow_run_id=current_flow_run_id(), flow_name=flow_name, environment=environment, state=state,
            message=message, summary_markdown=summary_markdown, result_json=json.dumps(result, default=str),
        ))
        session.commit()


def canonical_audit_content(entry: AuditEntry) -> str:
    """The fields an entry's hash covers, in a fixed order and format."""
    fields = {
        "timestamp": _iso(entry.timestamp), "operation": entry.operation, "user": entry.user,
        "strategy_name": entry.strategy_name, "version": entry.version,
        "repository_hash": entry.repository_hash, "execution_time_ms": entry.execution_time_ms,
        "success": entry.success, "changed_files": entry.changed_files,
        "compliance_flags": entry.compliance_flags, "details": entry.details,
        "flow_run_id": entry.flow_run_id, "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds")


def append_audit(url: str | None, operation: str, user: str, *, success: bool = True,
                 strategy_name: str | None = None, version: str | None = None,
                 repository_hash: str | None = None, execution_time_ms: int | None = None,
                 changed_files: list[str] = (), compliance_flags: dict[str, Any] | None = None,
                 details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry to the hash chain; writers serialise on a lock so the chain never forks."""
    with session_for(url) as session:
        _lock_chain(session)
        head = session.exec(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
        entry = AuditEntry(
            timestamp=utcnow(), operation=operation, user=user, success=success,
            strategy_name=strategy_name, version=version, repository_hash=repository_hash,
            execution_time_ms=execution_time_ms, changed_files=json.dumps(list(changed_files)),
            compliance_flags=json.dumps(compliance_flags or {}, sort_keys=True),
            details=json.dumps(details or {}, sort_keys=True, default=str),
            flow_run_id=current_flow_run_id(), prev_hash=head or GENESIS_HASH, entry_hash="",
        )
        entry.entry_hash = hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest()
        session.add(entry)
        session.commit()
        return entry


def _lock_chain(session: Session) -> None:
    """Serialise appenders: an advisory lock on PostgreSQL, a write lock taken up front on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7415001)"))
    else:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
