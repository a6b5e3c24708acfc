"""The production deployment path, end to end on this machine, without containers.

A real `prefect server start` on a free loopback port with its database on PostgreSQL (pg_trgm)
and the settings of infra/prefect-server.env; the process work pool; the sandbox applied as the
`default` environment (the parameter every deployment in prefect.yaml passes), its ops store on
PostgreSQL; `prefect --no-prompt deploy --all` from this checkout; a process worker; the
health-check and daily-backup deployments run; then their history (states, logs, artifacts) read
back from the server API, and their summaries from the ops store. Every process is started in its
own session and its whole group is ended; the databases are dropped.

The session's Prefect test harness is not used: every subprocess gets an explicit environment.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from conftest import REPO, create_database, drop_database, free_port
from deployments.calendar import scheduled_jobs
from flows.registry import spec

pytestmark = [pytest.mark.postgres, pytest.mark.server]

BIN = Path(sys.executable).parent
POOL = "tradeops-process"
SERVER_ENV_FILE = REPO / "infra" / "prefect-server.env"
STARTUP_SECONDS, RUN_SECONDS = 180, 240

# `tradeops apply` with the overrides the tests use (tests/conftest.py apply_as_own_environment);
# the CLI takes no overrides, so the same function is called, in a process of its own.
APPLY = """
import json, sys
from pathlib import Path
from tradeops.cli.common import apply_file
print(apply_file(Path(sys.argv[1]), [tuple(pair) for pair in json.loads(sys.argv[2])], quiet=True))
"""


def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def tail(path: Path, lines: int = 60) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no output)"
    return f"--- last {lines} lines of {path.name} ---\n" + "\n".join(text.splitlines()[-lines:])


class Processes:
    """Long-running subprocesses, each in its own session, logged to a file; stopped as groups."""

    def __init__(self, folder: Path):
        self.folder, self.running = folder, {}

    def start(self, name: str, args: list[str], env: dict, cwd: Path) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.running[name] = proc
        return proc

    def logs(self) -> str:
        return "\n".join(tail(self.folder / f"{name}.log") for name in self.running)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):  # the worker before the server
            proc = self.running[name]
            for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # the group (flow-run subprocesses of the worker, the server's uvicorn) is gone too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_cli(args: list[str], env: dict, cwd: Path, procs: Processes, timeout: float = 180) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (f"{' '.join(args)} exited {done.returncode}\n{done.stdout[-3000:]}\n"
                                  f"{done.stderr[-3000:]}\n{procs.logs()}")
    return done.stdout


def wait_healthy(url: str, server: subprocess.Popen, procs: Processes) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited {server.returncode}\n{procs.logs()}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if json.loads(response.read()) is True:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"prefect server not healthy at {url} after {STARTUP_SECONDS} s\n{procs.logs()}")


def job_of(flow: str):
    """The flow's first scheduled job: its cron deployment (health-check's shallow interval one is second)."""
    return next(job for job in scheduled_jobs() if job.flow == flow)


def deployment_of(flow: str) -> str:
    return f"{flow}/{job_of(flow).deployment}"


def test_server_on_postgres_deploy_worker_runs_and_history(pg_server, pg_sandbox, tmp_path):
    started = time.monotonic()
    platform, config = pg_sandbox
    procs = Processes(tmp_path)
    databases = []
    try:
        prefect_db = create_database(pg_server, "tradeops_test_prefect")
        databases.append(prefect_db)
        conn = psycopg2.connect(prefect_db)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # Prefect's server needs it on PostgreSQL
        conn.close()
        store_db = create_database(pg_server, "tradeops_test_store")
        databases.append(store_db)

        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRADEOPS_"))}
        base.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        server_env = {**base, **read_env_file(SERVER_ENV_FILE),
                      "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db.replace("postgresql://", "postgresql+asyncpg://"),
                      # no surprise runs of the */5 health-check schedule while the test runs
                      "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"}
        client_env = {**base, "PREFECT_API_URL": api}
        server = procs.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                        "--port", str(port)], server_env, tmp_path)
        wait_healthy(api, server, procs)

        # the retention of infra/prefect-server.env is what the server runs with
        with urllib.request.urlopen(f"{api}/admin/settings", timeout=10) as response:
            settings = json.loads(response.read())["server"]
        assert settings["services"]["db_vacuum"]["enabled"] == ["events"], settings["services"]["db_vacuum"]
        assert settings["services"]["db_vacuum"]["retention_period"] in ("P7Y", "P2555D")
        assert settings["events"]["retention_period"] in ("P7Y", "P2555D"), settings["events"]

        run_cli([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"], client_env, tmp_path, procs)
        overrides = [("environment.name", "default"), ("environment.data_dir", str(tmp_path / "ops")),
                     ("ops_store.url", store_db), ("offsite.url", f"file://{tmp_path / 'offsite'}")]
        applied = run_cli([str(BIN / "python"), "-c", APPLY, str(config), json.dumps(overrides)],
                          client_env, tmp_path, procs)
        assert applied.strip().splitlines()[-1] == "default"
        run_cli([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], client_env, REPO, procs)
        procs.start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
                    {**client_env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, tmp_path)

        runs, summaries = {}, {}
        for flow in ("health-check", "daily-backup"):
            out = run_cli([str(BIN / "prefect"), "deployment", "run", deployment_of(flow)], client_env, tmp_path, procs)
            runs[flow] = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)

        from prefect.client.orchestration import SyncPrefectClient
        from prefect.client.schemas.filters import (
            ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId,
        )

        with SyncPrefectClient(api) as client:
            deadline = time.monotonic() + RUN_SECONDS
            while True:
                flow_runs = {flow: client.read_flow_run(run_id) for flow, run_id in runs.items()}
                if all(fr.state and fr.state.is_final() for fr in flow_runs.values()):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"runs not final after {RUN_SECONDS} s: "
                                f"{ {f: fr.state and fr.state.name for f, fr in flow_runs.items()} }\n{procs.logs()}")
                time.sleep(1)
            context = procs.logs()

            health, backup = flow_runs["health-check"], flow_runs["daily-backup"]
            # the sandbox plants an expired certificate and one expiring in 5 days: Failed, naming them
            assert spec("health-check").planted_failure
            assert health.state.type.value == "FAILED", f"{health.state!r}\n{context}"
            assert "expired.pem" in health.state.message and "expiring-5d.pem" in health.state.message
            assert backup.state.type.value == "COMPLETED", f"{backup.state!r}\n{context}"

            for flow, fr in flow_runs.items():
                # a worker of the pool ran it, in a process of its own, from the deployment
                assert fr.work_pool_name == POOL and fr.infrastructure_pid, (flow, fr, context)
                deployment = client.read_deployment_by_name(deployment_of(flow))
                assert fr.deployment_id == deployment.id and fr.parameters == {"environment": "default"}
                job = job_of(flow)
                assert [s.schedule.cron for s in deployment.schedules] == [job.cron]
                states = [s.name for s in client.read_flow_run_states(fr.id)]
                assert states[0] == "Scheduled" and {"Pending", "Running"} <= set(states), (flow, states)
                assert states[-1] == fr.state.name

                # a worker ships a run's logs in batches, after its state: wait for the line, up to a minute
                expected = "FAIL cert:expired.pem" if flow == "health-check" else "complete locally"
                deadline, messages = time.monotonic() + 60, ""
                while expected not in messages and time.monotonic() < deadline:
                    logs = []  # every line: the API answers a page (200 lines) at a time
                    while page := client.read_logs(
                            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])), offset=len(logs)):
                        logs.extend(page)
                    messages = "\n".join(log.message for log in logs)
                    time.sleep(0 if expected in messages else 1)
                assert expected in messages, f"{flow}: {expected!r} not in the run's logs\n{messages[-3000:]}"

                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[fr.id])))
                [summary] = [a for a in artifacts if a.key == f"{flow}-summary"]
                assert summary.type == "markdown"
                title = "# Health check: default" if flow == "health-check" else "# Daily backup "
                assert summary.data.startswith(title), summary.data[:200]
                summaries[flow] = summary.data

        # the evidence outlives a server rebuild: each run's summary is in the ops store
        conn = psycopg2.connect(store_db)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT flow_run_id, flow_name, environment, state, summary_markdown FROM flow_run_summary "
                        "WHERE flow_run_id = ANY(%s)", (list(runs.values()),))
            rows = {row[0]: row[1:] for row in cur.fetchall()}
        conn.close()
        expected_rows = {runs["health-check"]: ("health-check", "default", "Failed", summaries["health-check"]),
                         runs["daily-backup"]: ("daily-backup", "default", "Completed", summaries["daily-backup"])}
        assert rows == expected_rows, f"ops store flow_run_summary: {rows}"
        print(f"\nproduction e2e: {time.monotonic() - started:.0f} s")
    finally:
        procs.stop_all()
        for url in databases:
            drop_database(url)
    for name, proc in procs.running.items():
        assert proc.returncode is not None, f"{name} still running"

