"""Running PostgreSQL server binaries for a restore: which binaries, as which user, on which port.

initdb and postgres refuse to run as root; a tradeops worker running as root therefore runs them
as the `postgres` user (runuser), and hands that user the folders they need.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import tradeops

CLUSTER_OWNER_AS_ROOT = "postgres"


class ClusterError(Exception):
    """A scratch cluster could not be set up, started or stopped; the message says why."""


def pg_binary(name: str, major: int | None = None) -> str:
    """A PostgreSQL program of the given major version: Debian's /usr/lib/postgresql/<major>/bin
    first, then PATH, then `pg_config --bindir`."""
    candidates = []
    if major is not None:
        candidates.append(f"/usr/lib/postgresql/{major}/bin/{name}")
    if found := shutil.which(name):
        candidates.append(found)
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(f"{bindir}/{name}")
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and (major is None or binary_major(candidate) == major):
            return candidate
    wanted = f" of PostgreSQL {major}" if major else ""
    raise ClusterError(f"{name}{wanted} is not installed here (looked in /usr/lib/postgresql/*/bin, PATH and "
                       "pg_config --bindir): install the PostgreSQL server package of that version")


def binary_major(path: str) -> int | None:
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    digits = out.strip().split()[-1].split(".")[0] if out.strip() else ""
    return int(digits) if digits.isdigit() else None


def owner_argv(args: list[str]) -> list[str]:
    """`args` as the cluster owner: as it is, or through runuser when we are root."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if not runuser:
        raise ClusterError("running as root, and PostgreSQL must not: runuser is not available to run it as "
                           f"{CLUSTER_OWNER_AS_ROOT}")
    return [runuser, "-u", CLUSTER_OWNER_AS_ROOT, "--", *args]


def hand_to_owner(*paths: Path) -> None:
    """Give folders (recursively) to the cluster owner when we are root; nothing otherwise."""
    if os.geteuid() != 0:
        return
    owner = pwd.getpwnam(CLUSTER_OWNER_AS_ROOT)
    for path in paths:
        os.chown(path, owner.pw_uid, owner.pw_gid)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), owner.pw_uid, owner.pw_gid)


def owner_can_write(folder: Path) -> bool:
    if os.geteuid() != 0:
        return os.access(folder, os.W_OK | os.X_OK)
    return subprocess.run(owner_argv(["test", "-w", str(folder), "-a", "-x", str(folder)])).returncode == 0


@lru_cache(maxsize=1)
def wal_cli_command() -> str:
    """How the cluster owner runs `tradeops wal` (tradeops/wal/: standard library only): with this
    interpreter when the owner may run it, else with the system's python3 and this checkout on
    PYTHONPATH (a virtualenv under /root is out of the postgres user's reach)."""
    source = str(Path(tradeops.__file__).resolve().parent.parent)
    candidates = [sys.executable, shutil.which("python3"), "/usr/bin/python3"]
    for python in dict.fromkeys(c for c in candidates if c):
        env = {**os.environ, "PYTHONPATH": source}
        probe = subprocess.run(owner_argv([python, "-c", "import tradeops.wal.cli"]), env=env, capture_output=True,
                               cwd="/")
        if probe.returncode == 0:
            if python == sys.executable:
                return f"{shlex.quote(python)} -m tradeops.wal.cli"
            return f"PYTHONPATH={shlex.quote(source)} {shlex.quote(python)} -m tradeops.wal.cli"
    raise ClusterError(f"the cluster owner cannot run tradeops' WAL commands with {', '.join(candidates[:1])} or a "
                       f"system python3: install python3, and make {source} readable to it")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_ctl(major: int, data: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(owner_argv([pg_binary("pg_ctl", major), "-D", str(data), *args]), capture_output=True,
                          text=True, timeout=timeout + 30)


def start(major: int, data: Path, log: Path, timeout: float) -> None:
    done = pg_ctl(major, data, "-l", str(log), "-w", "-t", str(int(timeout)), "start", timeout=timeout)
    if done.returncode != 0:
        raise ClusterError(f"the restored cluster did not start: {log_tail(log) or done.stderr.strip()}")


def is_running(major: int, data: Path) -> bool:
    return pg_ctl(major, data, "status").returncode == 0


def stop(major: int, data: Path) -> None:
    if data.is_dir() and is_running(major, data):
        pg_ctl(major, data, "-m", "fast", "-w", "stop")


def log_tail(log: Path, lines: int = 6) -> str:
    """The last FATAL/PANIC/ERROR lines of a server log, else its last lines."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    serious = [line for line in text if any(f" {level}: " in line for level in ("FATAL", "PANIC", "ERROR"))]
    return " | ".join((serious or text)[-lines:])
