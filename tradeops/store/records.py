"""Writing records: each one stamped with the current Prefect flow run id when there is one."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Iterable

from sqlmodel import Session, select

from tradeops.store.engine import open_store, session_for
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
    """Append one entry to the hash chain; writers serialise on a lock so the chain never forks.

    The entry is built before the lock; under it the head is read, the entry stamped, linked,
    hashed and inserted, nothing else. On PostgreSQL that is two round trips on the bare driver
    connection: BEGIN + lock + head + next id; then INSERT + COMMIT, where the COMMIT releases the
    lock without waiting for its disk flush, and a last statement in the same message, a tiny
    transaction of its own committed synchronously, waits for the WAL flush past our commit record.
    So the entry is durable before we return, a crash can only lose a suffix of the chain, and
    writers are not serialised on one fsync each, which capped 8 writers below 2,000 appends/s
    (bench/audit.py; the ORM version managed a few hundred).
    """
    values: dict[str, Any] = dict(
        operation=operation, user=user, success=success,
        strategy_name=strategy_name, version=version, repository_hash=repository_hash,
        execution_time_ms=execution_time_ms, changed_files=json.dumps(list(changed_files)),
        compliance_flags=json.dumps(compliance_flags or {}, sort_keys=True),
        details=json.dumps(details or {}, sort_keys=True, default=str),
        flow_run_id=current_flow_run_id(),
    )

    def seal(head: str | None) -> None:
        """Under the lock: stamp, link to the head, hash (canonical_audit_content reads attributes)."""
        values.update(timestamp=utcnow(), prev_hash=head or GENESIS_HASH)
        content = canonical_audit_content(SimpleNamespace(**values))
        values["entry_hash"] = hashlib.sha256(content.encode()).hexdigest()

    engine = open_store(url)
    if engine.dialect.name != "postgresql":
        with session_for(url) as session:
            seal(_lock_chain(session)[0])
            entry = AuditEntry(**values)
            session.add(entry)
            session.commit()
        return entry
    pooled = engine.raw_connection()
    driver = pooled.dbapi_connection
    try:
        driver.rollback()  # idle, so autocommit may go on: BEGIN and COMMIT are sent with the statements
        driver.autocommit = True
        with driver.cursor() as cursor:
            try:
                head, values["id"] = _lock_chain(cursor)
                seal(head)
                cursor.execute(
                    'INSERT INTO audit_entry (id, "timestamp", operation, "user", strategy_name, version, '
                    "repository_hash, execution_time_ms, success, changed_files, compliance_flags, details, "
                    "flow_run_id, prev_hash, entry_hash) VALUES (%(id)s, %(timestamp)s, %(operation)s, %(user)s, "
                    "%(strategy_name)s, %(version)s, %(repository_hash)s, %(execution_time_ms)s, %(success)s, "
                    "%(changed_files)s, %(compliance_flags)s, %(details)s, %(flow_run_id)s, %(prev_hash)s, "
                    "%(entry_hash)s); SET LOCAL synchronous_commit TO OFF; COMMIT; "
                    "SELECT pg_logical_emit_message(true, 'tradeops_audit', '')", values)
            except BaseException:
                if not driver.closed:  # harmless when the failure came after COMMIT
                    cursor.execute("ROLLBACK")
                raise
    finally:
        if not driver.closed:
            driver.autocommit = False
        pooled.close()
    return AuditEntry(**values)


def _lock_chain(target: Any) -> tuple[str | None, int | None]:
    """Serialise appenders and read the chain head under the lock: (head hash, id for the new entry).

    PostgreSQL (a driver cursor, autocommit): BEGIN, an advisory transaction lock, then head and next
    id, in one round trip; each statement takes a fresh READ COMMITTED snapshot, so the head read
    sees every entry committed before the lock was granted. SQLite (a Session): a write lock taken
    up front; the id comes with the insert.
    """
    if isinstance(target, Session):
        target.connection().exec_driver_sql("BEGIN IMMEDIATE")
        head = target.exec(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
        return head, None
    target.execute("BEGIN; SELECT pg_advisory_xact_lock(7415001); "
                   "SELECT (SELECT entry_hash FROM audit_entry ORDER BY id DESC LIMIT 1), "
                   "nextval(pg_get_serial_sequence('audit_entry', 'id'))")
    head, next_id = target.fetchone()
    return head, next_id
