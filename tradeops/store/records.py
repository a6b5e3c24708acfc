"""Writing records: each one stamped with the current Prefect flow run id when there is one."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Iterable

import psycopg2
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import Engine
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
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
    hashed and inserted, nothing else. On PostgreSQL that is two round trips on a driver connection
    kept for this process, thread and store (no pool checkout, no pre-ping), with the statements
    prepared: BEGIN + lock + head + next id; then INSERT + COMMIT, where the COMMIT releases the
    lock without waiting for its disk flush, and a last statement in the same message, a tiny
    transaction of its own committed synchronously, waits for the WAL flush past our commit record.
    So the entry is durable before we return, a crash can only lose a suffix of the chain, and
    writers are not serialised on one fsync each (bench/audit.py: 8 writers, appends per second).
    """
    values: dict[str, Any] = dict(
        operation=operation, user=user, success=success,
        strategy_name=strategy_name, version=version, repository_hash=repository_hash,
        execution_time_ms=execution_time_ms, changed_files=json.dumps(list(changed_files)),
        compliance_flags=json.dumps(compliance_flags or {}, sort_keys=True),
        details=json.dumps(details or {}, sort_keys=True, default=str),
        flow_run_id=current_flow_run_id(),
    )
    engine = open_store(url)
    if engine.dialect.name != "postgresql":
        with session_for(url) as session:
            _seal(values, _lock_chain(session)[0])
            entry = AuditEntry(**values)
            session.add(entry)
            session.commit()
        return entry
    _append_postgresql(engine, values)
    return _stored_entry(values)


def _seal(values: dict[str, Any], head: str | None) -> None:
    """Under the lock: stamp, link to the head, hash (canonical_audit_content reads attributes)."""
    values.update(timestamp=utcnow(), prev_hash=head or GENESIS_HASH)
    content = canonical_audit_content(SimpleNamespace(**values))
    values["entry_hash"] = hashlib.sha256(content.encode()).hexdigest()


def _stored_entry(values: dict[str, Any]) -> AuditEntry:
    """The appended entry as the store holds it: a detached AuditEntry, as if read back, like the
    one the SQLite path returns after its commit; made the way the ORM makes loaded rows, without
    the constructor's per-field instrumentation (~90 us, a tenth of an append's CPU)."""
    mapper = AuditEntry.__mapper__
    if not mapper.configured:
        configure_mappers()
    entry = mapper.class_manager.new_instance()
    entry.__dict__.update(values)
    make_transient_to_detached(entry)
    return entry


def _append_postgresql(engine: Engine, values: dict[str, Any]) -> None:
    """Lock, read the head, seal, insert and commit on this thread's chain writer connection.

    A kept connection the server has dropped since (restart, idle timeout) fails the first round
    trip, which has changed nothing, so that one is retried once on a fresh connection; a failure
    in the second round trip is raised, as the entry may or may not have been committed.
    """
    for attempt in (1, 2):
        writer = _chain_writer(engine)
        known = writer.cursor.mogrify(_KNOWN_ARGUMENTS, values)  # quoted before the lock, not under it
        try:
            head, values["id"] = _lock_chain(writer.cursor)
            break
        except BaseException as exc:
            writer.abandon_transaction()
            if attempt == 1 and writer.used and writer.lost and isinstance(exc, psycopg2.Error):
                continue
            raise
    try:
        _seal(values, head)
        writer.cursor.execute(writer.insert_and_commit(values, known))
        writer.used = True
    except BaseException:
        writer.abandon_transaction()  # harmless when the failure came after COMMIT
        raise


class _ChainWriter:
    """A driver connection in autocommit, so BEGIN and COMMIT travel with the statements, with the
    append's statements prepared once: the server parses and plans them once per connection."""

    def __init__(self, engine: Engine):
        pooled = engine.raw_connection()  # connect as the engine does (URL, arguments, events) ...
        pooled.detach()  # ... but the connection is ours: prepared statements never reach the pool
        self.connection = pooled.dbapi_connection
        self.connection.rollback()
        self.connection.autocommit = True
        self.pid = os.getpid()
        self.used = False
        self.cursor = self.connection.cursor()
        self.cursor.execute("SELECT pg_get_serial_sequence('audit_entry', 'id')")
        sequence = self.cursor.fetchone()[0]
        self.cursor.execute(
            "PREPARE tradeops_audit_head AS SELECT (SELECT entry_hash FROM audit_entry ORDER BY id DESC LIMIT 1), "
            "nextval(%s::regclass); "
            f"PREPARE tradeops_audit_insert AS INSERT INTO audit_entry ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join(f'${n}' for n in range(1, len(_INSERT_COLUMNS) + 1))}); "
            "PREPARE tradeops_audit_flush AS SELECT pg_logical_emit_message(true, 'tradeops_audit', '')",
            (sequence,))

    @property
    def lost(self) -> bool:
        return bool(self.connection.closed)

    def usable(self) -> bool:
        return (not self.lost and self.pid == os.getpid()
                and self.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE)

    def insert_and_commit(self, values: dict[str, Any], known: bytes) -> bytes:
        """The second round trip: INSERT, an asynchronous COMMIT, then the synchronous flush;
        `known` holds the arguments quoted before the lock, the sealed ones are added here."""
        sealed = self.cursor.mogrify(_SEALED_ARGUMENTS, values)
        return b"EXECUTE tradeops_audit_insert(" + sealed + b", " + known + b"); COMMIT; EXECUTE tradeops_audit_flush"

    def abandon_transaction(self) -> None:
        """Roll back whatever is open; a connection that cannot is closed, to be replaced next time
        (the caller raises the failure that brought it here)."""
        if self.lost:
            return
        try:
            self.cursor.execute("ROLLBACK")
        except BaseException:
            self.connection.close()


_SEALED_COLUMNS = ("id", "timestamp", "prev_hash", "entry_hash")  # known only under the lock
_KNOWN_COLUMNS = ("operation", "user", "strategy_name", "version", "repository_hash", "execution_time_ms", "success",
                  "changed_files", "compliance_flags", "details", "flow_run_id")
_INSERT_COLUMNS = tuple(f'"{c}"' for c in _SEALED_COLUMNS + _KNOWN_COLUMNS)
_SEALED_ARGUMENTS = ", ".join(f"%({c})s" for c in _SEALED_COLUMNS)
_KNOWN_ARGUMENTS = ", ".join(f"%({c})s" for c in _KNOWN_COLUMNS)
_CHAIN_LOCK = 7415001  # the advisory lock every appender takes
_writers = threading.local()  # per thread: {engine: _ChainWriter}
_inherited: list[Any] = []  # connections a forked child inherited: kept, as closing one ends the parent's session


def _chain_writer(engine: Engine) -> _ChainWriter:
    """This thread's writer connection for `engine`, (re)opened when missing, lost or inherited."""
    writers = getattr(_writers, "by_engine", None)
    if writers is None:
        writers = _writers.by_engine = {}
    writer = writers.get(engine)
    if writer is not None and not writer.usable():
        if writer.pid != os.getpid():
            _inherited.append(writer.connection)
        elif not writer.lost:
            writer.connection.close()
        writer = None
    if writer is None:
        writer = writers[engine] = _ChainWriter(engine)
    return writer


def warm_audit_writer(url: str | None = None) -> None:
    """Open this thread's chain writer for the store now (PostgreSQL), so that a long-lived
    writer's first append does not pay for the connection (benchmarks, workers)."""
    engine = open_store(url)
    if engine.dialect.name == "postgresql":
        _chain_writer(engine)


def _lock_chain(target: Any) -> tuple[str | None, int | None]:
    """Serialise appenders and read the chain head under the lock: (head hash, id for the new entry).

    PostgreSQL (a chain writer's cursor, autocommit): BEGIN, synchronous_commit off for this
    transaction, the advisory transaction lock, then head and next id, in one round trip; each
    statement takes a fresh READ COMMITTED snapshot, so the head read sees every entry committed
    before the lock was granted. SQLite (a Session): a write lock taken up front; the id comes
    with the insert.
    """
    if isinstance(target, Session):
        target.connection().exec_driver_sql("BEGIN IMMEDIATE")
        head = target.exec(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
        return head, None
    target.execute(f"BEGIN; SET LOCAL synchronous_commit TO OFF; SELECT pg_advisory_xact_lock({_CHAIN_LOCK}); "
                   "EXECUTE tradeops_audit_head")
    head, next_id = target.fetchone()
    return head, next_id
