"""Benchmark: fan-out of 50 git repository backups in one Prefect flow, by degree of concurrency.

The flow submits one `backup-repository` task per repository, exactly as daily-backup does
(tasks/backup backup_repository_task, each holding its target's lease in the ops store, tasks/locks.py),
and waits for all. Two ways of bounding how many run at once, each at 1, 2 and 4:
- threads: the flow's ThreadPoolTaskRunner(max_workers=N);
- slots: an unbounded thread pool (one thread per repository), every task first taking a slot of
  a Prefect global concurrency limit of N (what daily-backup would do to bound a fan-out whatever
  its task runner; the limit can be changed in the UI while runs go on).
The baseline is 1 (thread or slot) in the same process run; the ratio is the speedup.
The runs go to a real `prefect server start` on PostgreSQL (production shape; the bench creates
and drops its database). Not the SQLite test server: there every slot acquisition made while a
flow run writes gets a 503 and a ~2 s client retry, which would be most of what is measured.
Repositories are made by the sandbox's generator.

    .venv/bin/python bench/fanout.py [--repos 50] [--rounds 3] [--workers 1 2 4]
        [--database-url postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
from _common import median_seconds, ratio_line


@contextmanager
def prefect_server_on_postgres(server_url: str, home: Path):
    """A fresh database (pg_trgm) and `prefect server start` on a free port; PREFECT_API_URL set.
    Everything is removed afterwards. Must run before prefect is imported."""
    name = f"tradeops_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{server_url}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = psycopg2.connect(f"{server_url}/{name}")
    with conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    conn.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_DATABASE_CONNECTION_URL=f"{server_url}/{name}".replace("postgresql://", "postgresql+asyncpg://"))
    log = (home / "server.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        api = f"http://127.0.0.1:{port}/api"
        for _ in range(180):
            if server.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=5):
                    break
            except OSError:
                time.sleep(1)
        os.environ.update(PREFECT_HOME=str(home), PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                          PREFECT_LOGGING_LEVEL="WARNING")
        yield api
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


SLOTS = "tradeops-bench-backup-slots"


def bench(args) -> None:
    # prefect reads its settings when imported: only now, with PREFECT_API_URL set
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.task_runners import ThreadPoolTaskRunner

    from tasks.backup import backup_repository_task
    from tasks.locks import lock_for
    from tradeops.sandbox.dataset import strategy_names
    from tradeops.sandbox.git_repos import create_strategy_repos

    @task(name="backup-repository-in-slot", cache_policy=NO_CACHE, task_run_name="backup-{target}")
    def backup_in_slot(target: str, repo: Path, set_dir: Path, lock):
        with concurrency(SLOTS, occupy=1, strict=True):
            return backup_repository_task.fn(target, repo, set_dir, None, lock=lock)

    @flow(name="bench-fanout-backup")
    def fanout_backup(repos: list[Path], set_dir: Path, slots: bool) -> int:
        """daily-backup's git part: one lease per target, every task submitted at once, then awaited."""
        store = f"sqlite:///{set_dir.parent / 'ops.db'}"
        locks = {repo: lock_for("backup", "bench", f"git:{repo.name}", store) for repo in repos}
        submit = ((lambda r: backup_in_slot.submit(f"git:{r.name}", r, set_dir, locks[r])) if slots else
                  (lambda r: backup_repository_task.submit(f"git:{r.name}", r, set_dir, None, lock=locks[r])))
        futures = [submit(repo) for repo in repos]
        return sum(len(future.result()) for future in futures)

    def run(repos: list[Path], root: Path, workers: int, slots: bool) -> None:
        set_dir = Path(tempfile.mkdtemp(dir=root, prefix="set-"))
        if slots:
            with get_client(sync_client=True) as client:
                client.upsert_global_concurrency_limit_by_name(SLOTS, workers)
        runner = ThreadPoolTaskRunner(max_workers=len(repos) if slots else workers)
        bundles = fanout_backup.with_options(task_runner=runner)(repos, set_dir, slots)
        assert bundles == len(repos), bundles

    root = Path(args.tmp)
    create_strategy_repos(root / "repos", strategy_names(args.repos), 7, datetime.now(timezone.utc), 40)
    repos = sorted((root / "repos").iterdir())
    run(repos[:4], root, 4, slots=False)  # warm-up: imports, flow and task registration
    results = {}
    for slots in (False, True):
        for workers in args.workers:
            results[slots, workers] = median_seconds(lambda: run(repos, root, workers, slots), args.rounds)
            print(f"  {'slots' if slots else 'threads'}={workers}: {results[slots, workers]:.2f} s", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    base = args.workers[0]
    for slots, what in ((False, "thread(s) of the task runner"), (True, "slot(s) of a global concurrency limit")):
        for workers in args.workers:
            print(ratio_line(f"{len(repos)} repository backups, {workers} {what}", results[slots, workers],
                             f"{base} {what.split(' ')[0]}", results[slots, base], args.rounds))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server (no database part) for the Prefect server's database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        (Path(tmp) / "prefect").mkdir()
        with prefect_server_on_postgres(args.database_url.rstrip("/"), Path(tmp) / "prefect"):
            bench(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
