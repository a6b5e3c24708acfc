"""Leases in the ops store (tasks/locks.py): one holder at a time, and a killed holder never keeps
one: on this host it is taken over at once, from another host when its lease expires."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

import tasks.locks as locks
from tasks.locks import Lock, TargetBusy, lock_for, target_lock
from tradeops.store import Lease, session_for


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_database")


def lease(lock: Lock) -> Lease | None:
    with session_for(lock.store_url) as session:
        return session.exec(select(Lease).where(Lease.name == lock.name)).first()


def plant(lock: Lock, **fields) -> None:
    """A lease as another process left it."""
    now = datetime.now(timezone.utc)
    values = dict(name=lock.name, holder="someone-else", host=socket.gethostname(), pid=os.getpid(),
                  pid_started=locks._process_started(os.getpid()), purpose="a planted holder",
                  acquired_at=now, expires_at=now + timedelta(seconds=60)) | fields
    with session_for(lock.store_url) as session:
        session.add(Lease(**values))
        session.commit()


def test_a_held_lease_makes_the_second_holder_wait_then_give_up_naming_the_first(store_url):
    lock = lock_for("backup", "env", "db:platform", store_url)
    with target_lock(lock, "the dump of db:platform"):
        held = lease(lock)
        assert held.pid == os.getpid() and held.host == socket.gethostname()
        started = time.monotonic()
        with pytest.raises(TargetBusy) as refused:
            with target_lock(lock, "maintenance of db:platform", timeout=1.0):
                pytest.fail("two holders at once")
        assert time.monotonic() - started >= 1.0
    assert str(refused.value).startswith("maintenance of db:platform is busy: held by the dump of db:platform "
                                         f"(pid {os.getpid()} on {socket.gethostname()}")
    assert lease(lock) is None  # released on the way out
    with target_lock(lock, "the next run", timeout=0):
        assert lease(lock).purpose == "the next run"


def test_a_holder_killed_with_sigkill_is_taken_over_at_once(store_url, tmp_path):
    lock = lock_for("backup", "env", "run", store_url)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from tasks.locks import lock_for, target_lock
        with target_lock(lock_for("backup", "env", "run", {store_url!r}), "a backup that will be killed"):
            print("held", flush=True)
            time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lease(lock).pid == holder.pid
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        with target_lock(lock, "the next backup", timeout=5):
            assert lease(lock).pid == os.getpid()
        assert time.monotonic() - started < 2
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_reused_pid_is_not_the_holder(store_url):
    lock = lock_for("backup", "env", "run", store_url)
    plant(lock, pid=os.getpid(), pid_started="1")  # our pid, but a process that started at tick 1
    with target_lock(lock, "this run", timeout=0):
        assert lease(lock).holder != "someone-else"


def test_a_holder_on_another_host_keeps_its_lease_until_it_expires(store_url):
    lock = lock_for("backup", "env", "run", store_url)
    now = datetime.now(timezone.utc)
    plant(lock, host="worker-elsewhere", pid=1, expires_at=now + timedelta(seconds=60))
    with pytest.raises(TargetBusy, match="held by a planted holder \\(pid 1 on worker-elsewhere"):
        with target_lock(lock, "this run", timeout=0.5):
            pass
    with session_for(store_url) as session:
        planted = session.exec(select(Lease).where(Lease.name == lock.name)).one()
        planted.expires_at = now - timedelta(seconds=1)  # it stopped renewing a minute ago
        session.add(planted)
        session.commit()
    with target_lock(lock, "this run", timeout=0):
        assert lease(lock).host == socket.gethostname()


def test_the_holder_renews_its_lease_while_it_works(store_url, monkeypatch):
    monkeypatch.setattr(locks, "LEASE_SECONDS", 0.9)  # renewed every 0.3 s
    lock = lock_for("backup", "env", "run", store_url)
    with target_lock(lock, "a long dump"):
        first = lease(lock).expires_at
        time.sleep(1.5)  # longer than the lease itself
        assert lease(lock).expires_at > first
        with pytest.raises(TargetBusy):  # still held, though the first expiry has passed
            with target_lock(lock, "another run", timeout=0):
                pass
