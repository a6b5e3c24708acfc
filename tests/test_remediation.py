"""Self-healing on the real sandbox: the matrix's actions and guards, escalation to incidents,
grouped alerts over many runs on a fake clock, the dry run that changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg2
import pytest
from sqlmodel import select

from blocks import AlertChannel, PlatformProcess
from conftest import apply_as_own_environment, free_port
from flows.health_check import health_check
from tasks.alert_groups import Finding, deliver_notices, plan_notices
from tasks.health.conditions import CONDITIONS
from tasks.health.sessions import Session, terminable
from tasks.remediation import ACTIONS, REMEDIATION_MATRIX
from tasks.performance.baselines import Baseline, save_baselines
from tasks.remediation.actions import open_circuit_breaker, restart_process
from tradeops.cli.main import main
from tradeops.clock import frozen_at
from tradeops.store import (
    AlertSent, AuditEntry, FlowRunSummary, HealthResult, Incident, RemediationAttempt, session_for,
)
from tradeops.store.engine import upgrade

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
FAST = [("health.thresholds.idle_in_transaction_seconds.warn", 0.5),
        ("health.thresholds.idle_in_transaction_seconds.fail", 1)]


def session(**overrides) -> Session:
    values = dict(pid=100, user="trader", application="risk-engine", state="idle in transaction",
                  backend_type="client backend", state_seconds=900.0, xact_seconds=900.0, blocking=1, own=False)
    return Session(**{**values, **overrides})


def own_process(tmp_path, start_command=None) -> list[tuple[str, object]]:
    """Overrides that give an environment its own API process (port, pid file, logs)."""
    port = free_port()
    run = tmp_path / "run"
    command = start_command or [
        os.sys.executable, "-m", "tradeops.sandbox.api_server", "start", "--port", str(port),
        "--pid-file", str(run / "api.pid"), "--request-log", str(run / "api-requests.log"),
        "--circuit-breaker-file", str(run / "breaker.open")]
    return [("processes.api.pid_file", str(run / "api.pid")),
            ("processes.api.health_url", f"http://127.0.0.1:{port}/health"),
            ("processes.api.request_log", str(run / "api-requests.log")),
            ("processes.api.circuit_breaker_file", str(run / "breaker.open")),
            ("processes.api.start_command", command)]


@pytest.fixture
def stop_api(tmp_path):
    yield
    pid_file = tmp_path / "run" / "api.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


# -- the matrix and its guards --------------------------------------------------------------------

def test_the_matrix_covers_known_conditions_with_known_actions():
    conditions = {c.name for c in CONDITIONS.values()}
    for name, rule in REMEDIATION_MATRIX.items():
        assert name in conditions and rule.action in ACTIONS and rule.max_attempts >= 1
        assert rule.source.startswith("runbook")
    assert CONDITIONS["reachable"].severity == "critical"  # runbook 004: the database down is P1


def test_the_session_guard_spares_our_own_tradeops_and_replication_sessions():
    assert terminable(session()) is None
    assert terminable(session(own=True)) == "our own session"
    assert terminable(session(application="tradeops-health")) == "a tradeops session"
    assert "walsender" in terminable(session(backend_type="walsender"))
    assert "logical replication worker" in terminable(session(backend_type="logical replication worker"))
    assert session(state_seconds=10, blocking=0).holding_up(60) is False
    assert session(state="active", state_seconds=5, xact_seconds=120, blocking=2).holding_up(60) is True


def test_restart_refuses_a_live_process_and_the_breaker_needs_two_sigma(tmp_path, stop_api):
    port = free_port()
    run = tmp_path / "run"
    process = PlatformProcess(target="api", pid_file=str(run / "api.pid"), health_url=f"http://127.0.0.1:{port}/health",
                              circuit_breaker_file=str(run / "breaker.open"), start_command=[
                                  os.sys.executable, "-m", "tradeops.sandbox.api_server", "start", "--port", str(port),
                                  "--pid-file", str(run / "api.pid"), "--request-log", str(run / "req.log"),
                                  "--circuit-breaker-file", str(run / "breaker.open")])
    assert restart_process(process, dry_run=False).outcome == "fixed"
    pid = process.pid()
    refused = restart_process(process, dry_run=False)
    assert refused.outcome == "refused" and process.pid() == pid  # never restarts a live process

    history = [100.0, 104.0, 96.0, 101.0, 99.0]  # mean 100, sigma 2.92: the limit is 105.8 ms
    assert open_circuit_breaker(process, 300.0, history[:4], T0, False).outcome == "refused"  # 4 samples
    assert open_circuit_breaker(process, 105.0, history, T0, False).outcome == "refused"
    assert not (run / "breaker.open").exists()
    assert open_circuit_breaker(process, 300.0, history, T0, True).outcome == "dry-run"
    assert not (run / "breaker.open").exists()
    opened = open_circuit_breaker(process, 300.0, history, T0, False)
    assert opened.outcome == "fixed" and "baseline 100.0 + 2 x 2.9 = 105.8 ms" in (run / "breaker.open").read_text()
    with urllib.request.urlopen(process.health_url) as answer:
        assert json.loads(answer.read())["circuit_breaker"] == "open"


# -- against the sandbox --------------------------------------------------------------------------

def idle_in_transaction(url: str, application: str):
    conn = psycopg2.connect(url, application_name=application)
    cursor = conn.cursor()
    cursor.execute("SELECT count(*) FROM regime_history")  # a transaction is open from here
    cursor.fetchone()
    return conn


def alive(conn) -> bool:
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except psycopg2.Error:
        return False


def test_an_idle_in_transaction_session_is_terminated_and_ours_survive(pg_sandbox, tmp_path, stop_api):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "heal", FAST + own_process(tmp_path))
    victim = idle_in_transaction(platform.database_url, "risk-engine")
    ours = idle_in_transaction(platform.database_url, "tradeops-backup")
    victim_pid = victim.get_backend_pid()
    time.sleep(1.5)

    state = health_check(environment=name, return_state=True)
    result = state.result(raise_on_failure=False)
    terminations = [r for r in result["remediations"] if r["action"] == "terminate_sessions"]
    assert [r["outcome"] for r in terminations] == ["fixed"], [c for c in result["checks"] if c["target"] == "platform"]
    assert f"pid {victim_pid} " in terminations[0]["detail"]
    assert not alive(victim) and alive(ours)
    ours.close()
    with session_for(store) as db:
        audit = db.exec(select(AuditEntry).where(AuditEntry.operation == "remediation")).all()
        attempts = db.exec(select(RemediationAttempt)).all()
    run_id = str(state.state_details.flow_run_id)
    assert {(a.flow_run_id, a.success) for a in audit if "terminate_sessions" in a.details} == {(run_id, True)}
    assert {(a.action, a.outcome, a.flow_run_id) for a in attempts} >= {("terminate_sessions", "fixed", run_id)}
    # nothing left to do: the next run's remediations hold no termination
    again = health_check(environment=name, return_state=True).result(raise_on_failure=False)
    assert [r for r in again["remediations"] if r["action"] == "terminate_sessions"] == []


def test_dry_run_says_what_it_would_do_and_changes_nothing(pg_sandbox, tmp_path, stop_api):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "dry", FAST + own_process(tmp_path)
                                           + [("remediation.dry_run", True)])
    victim = idle_in_transaction(platform.database_url, "risk-engine")
    time.sleep(1.5)
    result = health_check(environment=name, return_state=True).result(raise_on_failure=False)
    outcomes = {r["action"]: r["outcome"] for r in result["remediations"]}
    assert outcomes["terminate_sessions"] == "dry-run" and outcomes["restart_process"] == "dry-run"
    assert alive(victim)
    victim.close()
    assert not (tmp_path / "run" / "api.pid").exists()  # the process was not started
    assert all(c["status"] == "fail" for c in result["checks"] if c["check"] == "process_alive")


def test_a_killed_platform_process_is_restarted_by_the_shallow_check(pg_sandbox, tmp_path, stop_api):
    _, config = pg_sandbox
    name, _ = apply_as_own_environment(config, tmp_path, "restart", own_process(tmp_path))
    process = PlatformProcess.load(f"{name}-process-api")
    subprocess.run(process.start_command, check=True, timeout=30)
    old = process.pid()
    os.kill(old, signal.SIGKILL)
    time.sleep(0.2)

    state = health_check(environment=name, level="shallow", return_state=True)
    result = state.result(raise_on_failure=False)
    assert {c["check"] for c in result["checks"]} == {"reachable", "process_alive"}  # shallow: nothing more
    assert [(r["action"], r["outcome"]) for r in result["remediations"]] == [("restart_process", "fixed")]
    assert state.is_completed(), state.message  # fixed: the run does not fail on it
    new = process.pid()
    assert new is not None and new != old
    with urllib.request.urlopen(process.health_url, timeout=5) as answer:
        assert answer.status == 200


def test_three_failed_remediations_open_one_incident_that_resolves_when_the_condition_clears(
        pg_sandbox, tmp_path, stop_api, monkeypatch, capsys):
    _, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "esc", own_process(tmp_path, ["false"]))
    for run in range(4):
        with frozen_at(T0 + timedelta(minutes=2 * run)):  # past the 1-minute cool-down each time
            result = health_check(environment=name, level="shallow", return_state=True).result(
                raise_on_failure=False)
        restarts = [r for r in result["remediations"] if r["action"] == "restart_process"]
        assert [r["outcome"] for r in restarts] == ["failed" if run < 3 else "exhausted"]
        assert [e["condition_key"] for e in result["escalations"]] == (
            ["platform_process_down:process:api"] if run == 2 else [])
    with session_for(store) as db:
        incidents = db.exec(select(Incident)).all()
        sent = db.exec(select(AlertSent).where(AlertSent.alert_key.like("condition:platform_process_down%"))).all()
    assert [(i.severity, i.status, i.condition_key) for i in incidents] == [
        ("P1", "open", "platform_process_down:process:api")]
    assert len(sent) == 1  # four failing runs, one notification
    with session_for(store) as db:
        summary = db.exec(select(FlowRunSummary).where(FlowRunSummary.flow_run_id == incidents[0].flow_run_id)).one()
    assert "## Diagnostics" in summary.summary_markdown  # the escalating run diagnosed, though shallow

    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    monkeypatch.delenv("TRADEOPS_CONFIG", raising=False)
    assert main(["incident", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(i["severity"], i["condition_key"]) for i in listed] == [("P1", "platform_process_down:process:api")]

    # the process comes back (by hand): the next run sends the resolved notice and resolves the incident
    process = PlatformProcess.load(f"{name}-process-api")
    port = process.health_url.split(":")[2].split("/")[0]
    run_dir = tmp_path / "run"
    subprocess.run([os.sys.executable, "-m", "tradeops.sandbox.api_server", "start", "--port", port, "--pid-file",
                    str(run_dir / "api.pid"), "--request-log", str(run_dir / "api-requests.log")], check=True,
                   timeout=30)
    with frozen_at(T0 + timedelta(minutes=10)):
        result = health_check(environment=name, level="shallow", return_state=True).result(raise_on_failure=False)
    assert [(n["kind"], n["key"]) for n in result["notifications"]] == [
        ("resolved", "platform_process_down:process:api")]
    assert result["open_incidents"] == []
    assert main(["incident", "show", str(incidents[0].id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    kinds = [e["kind"] for e in shown["timeline"]]
    assert shown["status"] == "resolved" and kinds[0] == "opened" and kinds[-1] == "resolved"
    assert shown["timeline"][-1]["text"] == "condition cleared"


# -- the circuit breaker and the stored performance baselines (issue 19) ---------------------------

SLOW_BASELINE = Baseline("request", "GET /api/v1/slow", 400, 0.019, 0.027, 0.034, 0.020, 0.005)  # limit 30 ms
REGIME_BASELINE = Baseline("request", "GET /api/v1/regime", 400, 0.003, 0.004, 0.005, 0.003, 0.001)  # limit 5 ms


def plant_requests(process: PlatformProcess, path: str, durations_ms: list[float], end: datetime) -> None:
    """Append requests to the API's request log (its own format), over the 4 minutes before `end`."""
    step = timedelta(minutes=4) / len(durations_ms)
    with open(process.request_log, "a") as log:
        log.writelines(f"{(end - timedelta(minutes=4) + i * step).isoformat()} GET {path} 200 {ms:.2f}\n"
                       for i, ms in enumerate(durations_ms))


def started_api(name: str) -> PlatformProcess:
    process = PlatformProcess.load(f"{name}-process-api")
    subprocess.run(process.start_command, check=True, timeout=30)
    return process


def breaker_open(process: PlatformProcess) -> bool:
    with urllib.request.urlopen(process.health_url, timeout=5) as answer:
        return json.loads(answer.read())["circuit_breaker"] == "open"


def check_of(result: dict, check: str) -> dict:
    [found] = [c for c in result["checks"] if c["check"] == check]
    return found


def test_a_route_beyond_its_stored_baseline_is_flagged_and_opens_the_breaker(pg_sandbox, tmp_path, stop_api):
    _, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "route", own_process(tmp_path))
    process = started_api(name)
    save_baselines(store, name, [SLOW_BASELINE, REGIME_BASELINE], T0 - timedelta(days=30), T0)

    # within their baselines: nothing flagged, nothing done
    plant_requests(process, "/api/v1/slow", [18.0, 20, 22, 19, 21, 23, 20, 24, 18, 21, 22, 19], T0)
    plant_requests(process, "/api/v1/regime", [3.0] * 12, T0)
    with frozen_at(T0):
        calm = health_check(environment=name, return_state=True).result(raise_on_failure=False)
    assert check_of(calm, "api_route_latency")["status"] == "pass"
    assert "2 route(s) within 2 sigma" in check_of(calm, "api_route_latency")["detail"]
    assert [r for r in calm["remediations"] if r["action"] == "open_circuit_breaker"] == []
    assert not breaker_open(process)

    # ten minutes later GET /api/v1/slow runs at 4x its baseline, still under the 200 ms p99 threshold
    slow = [70.0, 75, 80, 85, 90, 78, 82, 88, 72, 76, 84, 79]
    t1 = T0 + timedelta(minutes=10)
    plant_requests(process, "/api/v1/slow", slow, t1)
    plant_requests(process, "/api/v1/regime", [3.0] * 12, t1)
    with frozen_at(t1):
        state = health_check(environment=name, return_state=True)
    result = state.result(raise_on_failure=False)
    assert check_of(result, "api_p99_latency")["status"] == "pass"  # the absolute threshold sees nothing
    route = check_of(result, "api_route_latency")
    assert route["status"] == "fail" and route["value"] == 1
    assert f"GET /api/v1/slow: median {np.median(slow):.1f} ms of 12 request(s) > baseline mean 20.0 + 2 x 5.0 = " \
           "30.0 ms" in route["detail"]
    [breaker] = [r for r in result["remediations"] if r["action"] == "open_circuit_breaker"]
    assert (breaker["condition_key"], breaker["outcome"], breaker["dry_run"], breaker["baseline"]) == (
        "api_route_slow:api:api", "fixed", False, "stored performance baseline")
    assert "GET /api/v1/slow: median" in breaker["detail"] and "/api/v1/regime" not in breaker["detail"]
    assert breaker_open(process)
    flag = (tmp_path / "run" / "breaker.open").read_text()
    assert f"opened_at={t1.isoformat()}" in flag and "baseline=stored performance baseline" in flag
    with session_for(store) as db:
        audit = [json.loads(a.details) for a in db.exec(select(AuditEntry).where(
            AuditEntry.operation == "remediation")).all()]
    assert [(a["condition"], a["baseline"], a["dry_run"]) for a in audit if a["action"] == "open_circuit_breaker"] \
        == [("api_route_slow:api:api", "stored performance baseline", False)]


def test_without_a_stored_baseline_the_breaker_falls_back_to_the_health_check_history(pg_sandbox, tmp_path,
                                                                                     stop_api):
    _, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "hist", own_process(tmp_path))
    process = started_api(name)
    history = [100.0, 104.0, 96.0, 101.0, 99.0]  # earlier runs' p99: mean 100, sigma 2.92, limit 105.8 ms
    with session_for(store) as db:
        db.add_all([HealthResult(flow_run_id=f"earlier-{i}", environment=name, target="api:api",
                                 check="api_p99_latency", status="pass", value=v, unit="ms",
                                 checked_at=T0 - timedelta(minutes=5 * (len(history) - i)))
                    for i, v in enumerate(history)])
        db.commit()
    durations = [250.0 + 5 * i for i in range(12)]
    plant_requests(process, "/api/v1/regime", durations, T0)
    with frozen_at(T0):
        result = health_check(environment=name, return_state=True).result(raise_on_failure=False)
    route = check_of(result, "api_route_latency")
    assert route["status"] == "skip" and "GET /api/v1/regime: no baseline" in route["detail"]
    p99 = check_of(result, "api_p99_latency")
    assert p99["status"] == "fail" and p99["value"] == pytest.approx(np.percentile(durations, 99), abs=1e-3)
    [breaker] = [r for r in result["remediations"] if r["action"] == "open_circuit_breaker"]
    assert (breaker["condition_key"], breaker["outcome"], breaker["dry_run"]) == (
        "api_latency_high:api:api", "fixed", False)
    assert breaker["baseline"].startswith("health-check p99 history (5 earlier run(s); no stored route baseline")
    assert "> baseline 100.0 + 2 x 2.9 = 105.8 ms" in breaker["detail"]
    assert breaker_open(process)


# -- alert noise over many runs -------------------------------------------------------------------

def test_a_condition_failing_for_100_runs_is_one_alert_reminders_and_a_resolved_notice(tmp_path):
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(store)
    channels = [AlertChannel(target="chat", kind="log", min_severity="medium")]
    finding = Finding("database_unreachable:platform", "database_unreachable", "platform", "critical",
                      "database does not answer: platform")
    kinds = {}
    for run in range(1, 101):  # every 5 minutes, 100 runs: 8 h 15 min
        with frozen_at(T0 + timedelta(minutes=5 * (run - 1))):
            notices = deliver_notices(store, "prod", plan_notices(store, "prod", [finding], {finding.key}), channels)
        kinds[run] = [n.kind for n in notices]
    assert kinds[1] == ["firing"] and kinds[2] == ["quiet"] and kinds[10] == ["quiet"] and kinds[100] == ["quiet"]
    reminders = [run for run, k in kinds.items() if k == ["reminder"]]
    assert reminders == [49, 97]  # 4 h after the first notice, then 4 h after the reminder
    assert sum(k != ["quiet"] for k in kinds.values()) == 3  # 12 runs an hour: 1 notice in the first hour
    with frozen_at(T0 + timedelta(minutes=500)):
        cleared = deliver_notices(store, "prod", plan_notices(store, "prod", [], {finding.key}), channels)
        unseen = plan_notices(store, "prod", [], set())
    assert [(n.kind, n.status) for n in cleared] == [("resolved", "sent")] and unseen == []
    with session_for(store) as db:
        assert len(db.exec(select(AlertSent)).all()) == 4  # firing, 2 reminders, resolved
