"""health-check end to end: sandbox on PostgreSQL, the CLI contract, records, artifacts, secrets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogHandler
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from sqlmodel import select

from blocks import DatabaseTarget, TradeopsEnvironment
from tradeops.cli.common import apply_file
from tradeops.cli.main import main
from tradeops.cli.config import parse_override
from tradeops.store import FlowRunSummary, HealthResult, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

TRADEOPS = str(Path(sys.executable).parent / "tradeops")
SECRET = "Tr4deops-S3cret-pw"
PLANTED_FAILURES = {"cert:expired.pem", "cert:expiring-5d.pem"}


def with_password(url: str) -> str:
    """The sandbox URL with a password (trust auth ignores it): it must never surface anywhere."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


async def _evidence(flow_run_id: str):
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        flow_run = await client.read_flow_run(flow_run_id)
    return logs, artifacts, flow_run


def test_health_check_on_postgres_names_the_planted_certificates(pg_sandbox):
    from flows.health_check import health_check

    platform, config_path = pg_sandbox
    environment = apply_file(config_path, [parse_override(f'databases.platform.url="{with_password(platform.database_url)}"')])
    assert DatabaseTarget.load("sandbox-db-platform").url.get_secret_value() == with_password(platform.database_url)

    state = health_check(environment=environment, return_state=True)
    assert state.is_failed()
    result = state.result(raise_on_failure=False)
    failing = {c["target"] for c in result["checks"] if c["status"] == "fail"}
    # the sandbox's API process is down until a health check's remediation starts it (as here)
    assert failing - {"process:api"} == PLANTED_FAILURES
    restarts = [r for r in result["remediations"] if r["action"] == "restart_process"]
    assert [r["outcome"] for r in restarts] == (["fixed"] if "process:api" in failing else [])
    assert {c["target"]: c["status"] for c in result["checks"]}["cert:expiring-25d.pem"] == "warn"
    checks = {(c["target"], c["check"]): c for c in result["checks"]}
    assert checks[("platform", "reachable")]["status"] == "pass"
    assert checks[("platform", "connections")]["status"] == "pass"
    assert "expired.pem" in state.message and "expiring-5d.pem" in state.message

    run_id = str(state.state_details.flow_run_id)
    block = TradeopsEnvironment.load(environment)
    store = block.store_url()
    with session_for(store) as session:
        rows = session.exec(select(HealthResult).where(HealthResult.flow_run_id == run_id)).all()
        summary = session.exec(select(FlowRunSummary).where(FlowRunSummary.flow_run_id == run_id)).one()
    assert len(rows) == len(result["checks"])
    assert {r.target for r in rows if r.status == "fail"} - {"process:api"} == PLANTED_FAILURES
    assert summary.state == "Failed" and "expired.pem" in summary.summary_markdown

    APILogHandler().flush()  # logs reach the API in background batches
    logs, artifacts, flow_run = asyncio.run(_evidence(run_id))
    keys = {a.key for a in artifacts}
    assert {"health-check-summary", "health-check-results"} <= keys
    markdown = next(a.data for a in artifacts if a.key == "health-check-summary")
    assert "| ❌ fail | cert:expired.pem |" in markdown
    report = Path(result["report"]).read_text()
    assert report.strip() == markdown.strip()

    # no secret in parameters, logs, artifacts, the report or the ops store summary
    exposed = [json.dumps(flow_run.parameters), *(log.message for log in logs),
               *(json.dumps(a.data, default=str) for a in artifacts), report, summary.result_json]
    assert logs, "the run wrote no logs to the API"
    assert not [text for text in exposed if SECRET in text]
    assert flow_run.parameters == {"environment": "sandbox", "level": "deep"}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_API_URL": os.environ["TRADEOPS_TEST_API_URL"]}
    return subprocess.run([TRADEOPS, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_cli_run_json_contract_and_exit_code(pg_sandbox):
    _, config_path = pg_sandbox
    proc = _cli("run", "health-check", "--config", str(config_path), "--json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    payload = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(payload) >= {"flow", "flow_run_id", "state", "result"}
    assert (payload["flow"], payload["state"]) == ("health-check", "Failed")
    assert {c["target"] for c in payload["result"]["checks"] if c["status"] == "fail"} - {"process:api"} == PLANTED_FAILURES


def test_cli_usage_errors_exit_2(pg_sandbox, tmp_path):
    _, config_path = pg_sandbox
    cases = [
        (("run", "no-such-flow"), "unknown flow 'no-such-flow'"),
        (("run", "health-check", "--config", str(config_path), "--set", "bogus=1"), "--set bogus: unknown name"),
        (("run", "health-check", "--config", str(config_path), "--set", "offsite.url=ftp://x"),
         "offsite.url: 'ftp://x' is not a valid URL"),
        (("run", "health-check", "--set", "offsite.url=s3://b/p"), "needs --config"),
        (("sandbox", "create", str(tmp_path / "s"), "--database-url", "mysql://x/y"), "mysql://x/y"),
        (("run",), "the following arguments are required: flow"),
        (("run", "health-check", "--set", "environment=never-applied"), "no tradeops environment 'never-applied'"),
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text(config_path.read_text() + "\n[surprise]\nx = 1\n")
    cases.append((("run", "health-check", "--config", str(broken)), "surprise: unknown key"))
    for args, expected in cases:
        proc = _cli(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr[-1500:])
        assert expected in proc.stderr, (args, proc.stderr[-1500:])


def test_flows_json_lists_names_and_schedules(capsys):
    assert main(["flows", "--json"]) == 0
    rows = {r["flow"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["health-check"]["deployments"][0]["cron"] == "*/5 * * * *"
    assert rows["health-check"]["deployments"][0]["timezone"] == "UTC"
    # runbook 001 Check Levels: shallow every 30 s, an interval schedule (a cron's unit is a minute)
    shallow = rows["health-check"]["deployments"][1]
    assert (shallow["name"], shallow["interval_seconds"], shallow["parameters"]) == (
        "health-check-shallow-every-30-seconds", 30, {"level": "shallow"})
    assert "cron" not in shallow


def test_flows_text_shows_the_interval_schedule(capsys):
    assert main(["flows"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("health-check ")]
    assert "health-check-every-5-minutes: */5 * * * * UTC" in line
    assert "health-check-shallow-every-30-seconds: every 30 s" in line


def test_ops_store_on_postgresql_via_env(pg_sandbox, pg_database, monkeypatch):
    from flows.health_check import health_check

    _, config_path = pg_sandbox
    monkeypatch.setenv("TRADEOPS_DATABASE_URL", pg_database)
    environment = apply_file(config_path)
    state = health_check(environment=environment, return_state=True)
    run_id = str(state.state_details.flow_run_id)
    with session_for(pg_database) as session:
        rows = session.exec(select(HealthResult).where(HealthResult.flow_run_id == run_id)).all()
        summary = session.exec(select(FlowRunSummary).where(FlowRunSummary.flow_run_id == run_id)).one()
    assert len(rows) == len(state.result(raise_on_failure=False)["checks"])
    assert summary.flow_name == "health-check"
