"""Benchmark: the shallow health check (runbook 001 "Check Levels": every 30 s) vs the runbook's
shell recipe for the same question.

Ours: the plain functions the flow's shallow level runs: the database answers its probe
(`check_database(..., shallow=True)`) and the platform process is alive and answers /health
(`check_process_alive`). Baseline: runbook 004 "RegimeSystemDown" / "DatabaseConnectionLost":
`curl http://.../health` and `pg_isready`, plus `psql -c 'SELECT 1'` (the probe itself). Both
against one sandbox database and one running sandbox API process, in one process run; medians of
N rounds, the ratio, and the mean CPU time per round (process time: the target is well under 1 s, so
every 30 s is affordable). The Prefect flow run around it is not counted: a 30-second schedule
would run the functions in a long-lived worker, not one flow run each.

    .venv/bin/python bench/shallow_check.py [--rounds 30] [--server postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from blocks.processes import PlatformProcess  # noqa: E402
from tasks.health import HEALTH_THRESHOLDS as T, check_database  # noqa: E402
from tasks.health.platform import check_process_alive  # noqa: E402


def ours(url: str, process: PlatformProcess) -> None:
    results = check_database("platform", url, "platform", T, "SELECT 1", shallow=True)
    results.append(check_process_alive(process))
    assert all(r.status == "pass" for r in results), results


def runbook_recipe(url: str, process: PlatformProcess) -> None:
    parts = urlsplit(url)
    script = (f"curl -sf {process.health_url} >/dev/null && "
              f"pg_isready -q -h {parts.hostname} -p {parts.port or 5432} -d {parts.path.lstrip('/')} && "
              f"psql '{url}' -Atc 'SELECT 1' >/dev/null")
    subprocess.run(["sh", "-c", script], check=True)


def timed(fn, url: str, process: PlatformProcess, rounds: int) -> tuple[float, float]:
    """(median wall seconds, mean CPU seconds of this process and its children) per round; CPU time
    comes in clock ticks (10 ms), too coarse for one round's median, so it is averaged over all."""
    walls = []
    start = os.times()
    for _ in range(rounds):
        before_wall = time.perf_counter()
        fn(url, process)
        walls.append(time.perf_counter() - before_wall)
    end = os.times()
    return statistics.median(walls), (sum(end[:4]) - sum(start[:4])) / rounds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    name = f"tradeops_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{args.server}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = f"{args.server}/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        process = PlatformProcess(target="api", pid_file=f"{tmp}/api.pid", health_url=f"http://127.0.0.1:{port}/health")
        subprocess.run([sys.executable, "-m", "tradeops.sandbox.api_server", "start", "--port", str(port),
                        "--pid-file", process.pid_file, "--request-log", f"{tmp}/requests.log"], check=True)
        try:
            ours(url, process), runbook_recipe(url, process)  # warm up both
            ours_s, ours_cpu = timed(ours, url, process, args.rounds)
            recipe_s, recipe_cpu = timed(runbook_recipe, url, process, args.rounds)
        finally:
            os.kill(process.pid(), signal.SIGTERM)
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"shallow check, median of {args.rounds}: tradeops {ours_s * 1000:.1f} ms "
          f"({ours_cpu * 1000:.0f} ms CPU), runbook shell recipe (curl + pg_isready + psql) {recipe_s * 1000:.1f} ms "
          f"({recipe_cpu * 1000:.0f} ms CPU), ratio {recipe_s / ours_s:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
