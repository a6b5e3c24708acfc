"""PostgreSQL sessions that hold others up: idle in a transaction, or blocking other sessions, for
longer than a threshold (runbook 001 "Remediation Matrix": Database Lock -> kill query).

`SESSIONS` lists every client session with what a guard needs; `terminable` is the guard: never
our own session, never a tradeops session (application_name tradeops...), never anything but a
client backend (replication connections are walsender backends, logical replication runs in
workers; a superuser's own sessions carry the REPLICATION attribute too, so the role is no guide).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRADEOPS_APPLICATION_PREFIX = "tradeops"

SESSIONS = """
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
       a.backend_type,
       coalesce(extract(epoch FROM now() - a.state_change), 0)::float AS state_seconds,
       coalesce(extract(epoch FROM now() - a.xact_start), 0)::float AS xact_seconds,
       cardinality(array(SELECT b.pid FROM pg_stat_activity b WHERE a.pid = ANY(pg_blocking_pids(b.pid)))) AS blocking,
       a.pid = pg_backend_pid() AS own,
       left(coalesce(a.query, ''), 200)
FROM pg_stat_activity a
WHERE a.datname = current_database()
"""


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    application: str
    state: str
    backend_type: str
    state_seconds: float
    xact_seconds: float
    blocking: int  # sessions waiting on its locks
    own: bool
    query: str = ""

    def holding_up(self, threshold_seconds: float) -> bool:
        """Idle in a transaction, or blocking others inside one, for longer than the threshold."""
        idle = self.state.startswith("idle in transaction") and self.state_seconds > threshold_seconds
        blocking = self.blocking > 0 and self.xact_seconds > threshold_seconds
        return idle or blocking

    def describe(self) -> str:
        why = (f"idle in transaction for {self.state_seconds:.0f} s" if self.state.startswith("idle in transaction")
               else f"in a transaction for {self.xact_seconds:.0f} s")
        blocking = f", blocking {self.blocking} session(s)" if self.blocking else ""
        return f"pid {self.pid} ({self.user}, {self.application or 'no application name'}) {why}{blocking}"


def terminable(session: Session) -> str | None:
    """None when the guard lets remediation terminate `session`, else why not."""
    if session.own:
        return "our own session"
    if session.application.startswith(TRADEOPS_APPLICATION_PREFIX):
        return "a tradeops session"
    if session.backend_type != "client backend":
        return f"a {session.backend_type} backend (replication or system)"
    return None


def list_sessions(conn: Any) -> list[Session]:
    cursor = conn.cursor()
    try:
        cursor.execute(SESSIONS)
        return [Session(*row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def sessions_holding_up(conn: Any, threshold_seconds: float) -> list[Session]:
    return [s for s in list_sessions(conn) if s.holding_up(threshold_seconds)]
