"""One writer per target: a lease in the ops store, held by one process at a time.

Two runs that would write the same target (a scheduled and an ad-hoc backup, a backup and the
weekly maintenance of the same database) never do so at once: the second waits for the lease and
gives up with a clear error after TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS (default one hour).

Why not Prefect's global concurrency limits: on the embedded default every `tradeops run` starts
its own temporary Prefect server whose lease storage lives in memory, so a slot taken by a run
that was killed is never given back, and every later run waited the full hour. The ops store is
the one place every run of an environment shares on every setup (SQLite by default, PostgreSQL
in production), so the lease lives there:

- the holder renews it every LEASE_SECONDS / 3 while it works;
- a holder that died on this host (its pid is gone, or was reused by a newer process) loses it at
  once; a holder on another host loses it when `expires_at` passes (LEASE_SECONDS after its last
  renewal).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from tradeops.store import Lease, session_for
from tradeops.store.records import current_flow_run_id

LEASE_SECONDS = 60.0
POLL_SECONDS = 0.5
TIMEOUT_ENV = "TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 3600.0



def _log() -> logging.Logger | logging.LoggerAdapter:
    """The run's log inside a flow or task (so waits show in the UI), else tradeops.locks."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tradeops.locks")


class TargetBusy(Exception):
    """Another run held the target's lease for longer than the wait allowed."""


@dataclass(frozen=True)
class Lock:
    """A named lock in an environment's ops store (the URL is never shown: it may hold a password)."""
    name: str
    store_url: str = field(repr=False, compare=False)


def lock_name(purpose: str, environment: str, target: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"tradeops-{purpose}-{environment}-{target}".lower()).strip("-")


def lock_for(purpose: str, environment: str, target: str, store_url: str) -> Lock:
    return Lock(lock_name(purpose, environment, target), store_url)


def writer_lock(environment: str, target: str, store_url: str) -> Lock:
    """The lease every run that writes or dumps `target` holds: the backup of a database and its
    weekly maintenance never overlap, nor two backups of one repository."""
    return lock_for("backup", environment, target, store_url)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def holder_is_gone(lease: Lease, host: str) -> bool:
    """True when the holder certainly died: on this host, with its pid gone or reused."""
    if lease.host != host:
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    return lease.pid_started is not None and _process_started(lease.pid) not in (None, lease.pid_started)


def describe(lease: Lease) -> str:
    run = f", flow run {lease.flow_run_id}" if lease.flow_run_id else ""
    return (f"{lease.purpose or lease.name} (pid {lease.pid} on {lease.host}{run}, "
            f"since {_utc(lease.acquired_at):%Y-%m-%d %H:%M:%S} UTC)")


class HeldLease:
    """A lease this process holds, renewed in the background until released."""

    def __init__(self, lock: Lock, holder: str):
        self.lock, self.holder = lock, holder
        self.lost = False
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_until_released, daemon=True,
                                         name=f"lease-{lock.name}")
        self._renewer.start()

    def _renew_until_released(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                with session_for(self.lock.store_url) as session:
                    renewed = session.exec(update(Lease).where(Lease.name == self.lock.name,
                                                               Lease.holder == self.holder)
                                           .values(expires_at=datetime.now(timezone.utc)
                                                   + timedelta(seconds=LEASE_SECONDS))).rowcount
                    session.commit()
            except Exception as exc:  # noqa: BLE001 - the store is away for a moment: try again
                _log().warning("could not renew lease %s: %s", self.lock.name, exc)
                continue
            if not renewed:
                self.lost = True
                _log().error("lease %s was taken over by another run while this one held it", self.lock.name)
                return

    def release(self) -> None:
        self._stop.set()
        self._renewer.join(timeout=5)
        with session_for(self.lock.store_url) as session:
            session.exec(delete(Lease).where(Lease.name == self.lock.name, Lease.holder == self.holder))
            session.commit()


def try_acquire(lock: Lock, purpose: str) -> tuple[HeldLease | None, Lease | None]:
    """One attempt: (the held lease, None), or (None, the lease someone else holds)."""
    host, pid = socket.gethostname(), os.getpid()
    now = datetime.now(timezone.utc)
    mine = dict(holder=uuid.uuid4().hex, host=host, pid=pid, pid_started=_process_started(pid),
                flow_run_id=current_flow_run_id(), purpose=purpose[:500], acquired_at=now,
                expires_at=now + timedelta(seconds=LEASE_SECONDS))
    with session_for(lock.store_url) as session:
        current = session.exec(select(Lease).where(Lease.name == lock.name)).first()
        if current is None:
            session.add(Lease(name=lock.name, **mine))
            try:
                session.commit()
            except IntegrityError:  # another process inserted it first
                session.rollback()
                return None, session.exec(select(Lease).where(Lease.name == lock.name)).first()
        elif _utc(current.expires_at) <= now or holder_is_gone(current, host):
            previous = describe(current)
            taken = session.exec(update(Lease).where(Lease.name == lock.name, Lease.holder == current.holder)
                                 .values(**mine)).rowcount
            session.commit()
            if not taken:
                return None, session.exec(select(Lease).where(Lease.name == lock.name)).first()
            _log().warning("took over lease %s from %s, which is gone", lock.name, previous)
        else:
            return None, current
    return HeldLease(lock, mine["holder"]), None


@contextmanager
def target_lock(lock: Lock | None, target: str = "", timeout: float | None = None) -> Iterator[None]:
    """Hold `lock` for the duration, waiting for it up to `timeout` seconds (default
    $TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS, else one hour)."""
    if lock is None:
        yield
        return
    if timeout is None:
        timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS))
    deadline = time.monotonic() + timeout
    waiting_for = None
    while True:
        held, other = try_acquire(lock, target or lock.name)
        if held is not None:
            break
        if other is not None and waiting_for != other.holder:
            waiting_for = other.holder
            _log().info("waiting for %s: held by %s", target or lock.name, describe(other))
        if time.monotonic() >= deadline:
            holder = describe(other) if other is not None else "another run"
            raise TargetBusy(f"{target or lock.name} is busy: held by {holder} for over {timeout:g} s "
                             f"of waiting (lock {lock.name})")
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        held.release()
