"""A Prefect server with its services (the scheduler among them) on this machine, for `tradeops
serve` on the embedded default.

Prefect's ephemeral server, which `tradeops run` starts for one run, has no scheduler: served
deployments would register and never run. So `serve` starts `prefect server start` on loopback,
on the same database under PREFECT_HOME (SQLite; the blocks `apply` wrote are there), and stops
it when serving stops.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tradeops.errors import TradeopsError

DEFAULT_PORT = 4200
STOP_SECONDS = 20


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _any_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_prefect_server(home: Path, port: int | None = None, database_url: str | None = None) -> Iterator[str]:
    """Start `prefect server start` on 127.0.0.1 (`port`, else 4200 when free, else any free
    port) with its database under `home` (or at `database_url`, e.g. postgresql+asyncpg://...);
    yields its API URL; stops it on the way out."""
    port = port or (DEFAULT_PORT if _free(DEFAULT_PORT) else _any_free_port())
    if not _free(port):
        raise TradeopsError(f"port {port} is taken: pass --port with a free one")
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    log_path = home / "serve-server.log"
    with open(log_path, "ab") as log:
        server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start",
                                   "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait_until_healthy(server, api, log_path,
                            float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 180)))
        yield api
    finally:
        _stop(server)


def _wait_until_healthy(server: subprocess.Popen, api: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise TradeopsError(f"the local Prefect server exited ({server.returncode}); its log, "
                                f"{log_path}, ends: {log_path.read_text(errors='replace')[-1500:]}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise TradeopsError(f"the local Prefect server did not answer within {timeout:g} s (see {log_path})")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=STOP_SECONDS)
