"""Writing records: each one stamped with the current Prefect flow run id when there is one."""

from __future__ import annotations

import hashlib
import json
import os
import select as sockets
import sys
import threading
from datetime import timezone
from types import SimpleNamespace
from typing import Any, Iterable

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import Engine
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlmodel import Session, select

from tradeops.errors import UsageError
from tradeops.store.canonical import PG_ISO_TIMESTAMP, canonical_audit_content, sealed_template_parts
from tradeops.store.engine import open_store, session_for
from tradeops.store.identity import bound_identity
from tradeops.store.models import AuditEntry, FlowRunSummary, HealthResult, utcnow

GENESIS_HASH = "0" * 64


class AuditValueTooLong(UsageError):
    """A value longer than its audit_entry column: refused before it is hashed, because PostgreSQL
    stores a varchar(n) value whose excess is all spaces cut to n characters (no error), so the
    stored entry would no longer hash to what was sealed and `audit verify` would cry tamper."""


# (column, its varchar length) for the columns an appender fills; the sealed ones are ours.
_BOUNDED_COLUMNS = tuple((column.name, column.type.length) for column in AuditEntry.__table__.columns
                         if getattr(column.type, "length", None) and column.name not in ("prev_hash", "entry_hash"))


def current_flow_run_id() -> str | None:
    if "prefect" not in sys.modules:  # no flow runs in this process: a CLI command (importing Prefect costs ~1 s)
        return os.environ.get("PREFECT__FLOW_RUN_ID") or None
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


def append_audit(url: str | None, operation: str, user: str, *, success: bool = True,
                 strategy_name: str | None = None, version: str | None = None,
                 repository_hash: str | None = None, execution_time_ms: int | None = None,
                 changed_files: list[str] = (), compliance_flags: dict[str, Any] | None = None,
                 details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry to the hash chain; writers serialise on a lock so the chain never forks.

    The entry is built before the lock; under it the head is read, the entry stamped, linked,
    hashed and inserted, nothing else. On PostgreSQL the database does that part, in one round trip
    on a driver connection kept for this process, thread and store (no pool checkout, no pre-ping):
    we send the entry's canonical content in three parts (`sealed_template_parts`) in one message:
    BEGIN, the advisory lock, a prepared INSERT that reads the head, stamps the time from the
    database's clock, joins the parts around head and time and hashes them with sha256(); then a
    COMMIT that releases the lock without waiting for its disk flush, and last a tiny transaction
    of its own, committed synchronously, that waits for the WAL flush past our commit record and
    reads the sealed entry back. So the lock is held for server time only, never across a network
    round trip or Python; the entry is durable before we return; a crash can only lose a suffix of
    the chain; and writers do not wait for one fsync each in turn (bench/audit.py: 8 writers).

    A value longer than its column is refused before anything is sealed (AuditValueTooLong, exit 2).
    Entries appended while a command's identity is bound (tradeops.store.identity) record its OS
    login, and the impersonating user, in `details`.
    """
    identity = bound_identity()
    if identity is not None:  # a command's entries say which OS account ran it, and who impersonated
        details = {**identity.details(), **(details or {})}
    values: dict[str, Any] = dict(
        operation=operation, user=user, success=success,
        strategy_name=strategy_name, version=version, repository_hash=repository_hash,
        execution_time_ms=execution_time_ms, changed_files=json.dumps(list(changed_files)),
        compliance_flags=json.dumps(compliance_flags or {}, sort_keys=True),
        details=json.dumps(details or {}, sort_keys=True, default=str),
        flow_run_id=current_flow_run_id(),
    )
    for column, limit in _BOUNDED_COLUMNS:
        value = values[column]
        if value is not None and len(value) > limit:
            raise AuditValueTooLong(f"audit entry {operation!r}: {column} is {len(value)} characters, more than its "
                                    f"column holds ({limit}): {value[:40]!r}...; nothing recorded")
    engine = open_store(url)
    if engine.dialect.name != "postgresql":
        with session_for(url) as session:
            _seal(values, _lock_chain(session))
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
    """Seal, insert and commit the entry in one round trip on this thread's chain writer, then put
    what the database stamped (id, timestamp, prev_hash, entry_hash) into `values`.

    Nothing is retried: once the message is out, the entry may be committed even if the reply is
    lost. A kept connection the server has closed since (restart, idle timeout) is noticed before
    the message is sent, and replaced (`_ChainWriter.usable`).
    """
    writer = _chain_writer(engine)
    message = writer.append_message(values)
    try:
        writer.cursor.execute(message)
        sealed = writer.cursor.fetchone()
    except BaseException:
        writer.abandon_transaction()  # harmless when the failure came after COMMIT
        raise
    values.update(zip(_SEALED_COLUMNS, sealed))  # (the flush's void value comes last)
    values["timestamp"] = values["timestamp"].astimezone(timezone.utc)


def _readable_now(fd: int) -> bool:
    """Whether the socket has something to read right now. poll(), not select(): select() refuses a
    descriptor numbered 1024 or more, which a long-lived process with many files open reaches."""
    poller = sockets.poll()
    poller.register(fd, sockets.POLLIN | sockets.POLLERR | sockets.POLLHUP)
    return bool(poller.poll(0))


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
        self.cursor = self.connection.cursor()
        self.cursor.execute("SELECT pg_get_serial_sequence('audit_entry', 'id')")
        sequence = self.cursor.fetchone()[0]
        self.cursor.execute(_PREPARE_APPEND, dict(sequence=sequence, genesis=GENESIS_HASH, iso=PG_ISO_TIMESTAMP))

    @property
    def lost(self) -> bool:
        return bool(self.connection.closed)

    def usable(self) -> bool:
        """Open, ours, idle, and with nothing to read: an idle connection the server has closed
        (restart, idle timeout, terminated) has its goodbye or end of stream waiting on the socket."""
        return (not self.lost and self.pid == os.getpid()
                and self.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE
                and not _readable_now(self.connection.fileno()))

    def append_message(self, values: dict[str, Any]) -> bytes:
        """The whole append as one message: the lock, the sealing INSERT, the asynchronous COMMIT
        that releases the lock, then the synchronous flush that reads the sealed entry back."""
        before_prev_hash, before_timestamp, after_timestamp = sealed_template_parts(values)
        arguments = self.cursor.mogrify(_APPEND_ARGUMENTS, dict(
            values, before_prev_hash=before_prev_hash, before_timestamp=before_timestamp,
            after_timestamp=after_timestamp))
        return _LOCK_AND_EXECUTE + arguments + _COMMIT_AND_FLUSH

    def abandon_transaction(self) -> None:
        """Roll back whatever is open; a connection that cannot is closed, to be replaced next time
        (the caller raises the failure that brought it here)."""
        if self.lost:
            return
        try:
            self.cursor.execute("ROLLBACK")
        except BaseException:
            self.connection.close()


_CHAIN_LOCK = 7415001  # the advisory lock every appender takes
_SEALED_COLUMNS = ("id", "timestamp", "prev_hash", "entry_hash")  # stamped by the database, under the lock
_KNOWN_COLUMNS = {  # known before the lock, with their types as the prepared INSERT takes them
    "operation": "varchar", "user": "varchar", "strategy_name": "varchar", "version": "varchar",
    "repository_hash": "varchar", "execution_time_ms": "integer", "success": "boolean", "changed_files": "text",
    "compliance_flags": "text", "details": "text", "flow_run_id": "varchar",
}
_quoted = '"{}"'.format
_PARTS = ("before_prev_hash", "before_timestamp", "after_timestamp")  # $1, $2, $3: sealed_template_parts
_PREPARE_APPEND = (
    # $1..$3: the canonical content's parts; $4..: the known columns. `sealed` is the head, read
    # after the lock was granted (READ COMMITTED: this statement's snapshot is taken then), and the time.
    f"PREPARE tradeops_audit_append(text, text, text, {', '.join(_KNOWN_COLUMNS.values())}) AS "
    f"INSERT INTO audit_entry ({', '.join(_quoted(c) for c in (*_SEALED_COLUMNS, *_KNOWN_COLUMNS))}) "
    "SELECT nextval(%(sequence)s::regclass), sealed.at, sealed.head, "
    "encode(sha256(convert_to($1 || sealed.head || $2 || to_char(sealed.at AT TIME ZONE 'UTC', %(iso)s) || $3, "
    "'UTF8')), 'hex'), "
    f"{', '.join(f'${n}' for n in range(4, 4 + len(_KNOWN_COLUMNS)))} "
    "FROM (SELECT coalesce((SELECT entry_hash FROM audit_entry ORDER BY id DESC LIMIT 1), %(genesis)s) AS head, "
    "clock_timestamp() AS at) AS sealed; "
    # After the COMMIT, in a transaction of its own committed synchronously: waits for the WAL flush.
    "PREPARE tradeops_audit_flushed AS SELECT id, \"timestamp\", prev_hash, entry_hash, "
    "pg_logical_emit_message(true, 'tradeops_audit', '') FROM audit_entry "
    "WHERE id = (SELECT currval(%(sequence)s::regclass))"  # as an initplan: a volatile call would cost a scan
)
# READ COMMITTED whatever the database's default: under REPEATABLE READ the transaction's one
# snapshot would be taken by the lock statement, before the lock is granted, and miss the head.
_LOCK_AND_EXECUTE = (f"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO OFF; "
                     f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK}); "
                     "EXECUTE tradeops_audit_append(").encode()
_APPEND_ARGUMENTS = ", ".join(f"%({c})s" for c in (*_PARTS, *_KNOWN_COLUMNS))
_COMMIT_AND_FLUSH = b"); COMMIT; EXECUTE tradeops_audit_flushed"
_writers = threading.local()  # per thread: {engine: _ChainWriter}
_inherited: list[Any] = []  # connections a forked child inherited: kept, as closing one ends the parent's session


def _chain_writer(engine: Engine) -> _ChainWriter:
    """This thread's writer connection for `engine`, (re)opened when missing, closed (by us or the
    server) or inherited."""
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


def _lock_chain(session: Session) -> str | None:
    """SQLite: serialise appenders with a write lock taken up front, and read the chain head under
    it (the id comes with the insert). PostgreSQL appends seal in the database (_append_postgresql)."""
    session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    return session.exec(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
