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
from tasks.remediation.actions import open_circuit_breaker, restart_process
from tradeops.cli.main import main
from tradeops.clock import frozen_at
from tradeops.store import AlertSent, AuditEntry, FlowRunSummary, Incident, RemediationAttempt, session_for
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
