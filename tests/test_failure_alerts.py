"""Failure notifications end to end: real flow runs on the test server fail, their hooks notify a
webhook and an Alertmanager v2 receiver on loopback, and the tests read what arrived. No mocks."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.states import Failed
from sqlmodel import select

from flows import FLOWS, load_flow
from flows.hooks import FAILURE_HOOKS, notify_on_failure
from flows.registry import REGISTRY, flow_severities, severity_for
from tasks.alerts import SEVERITIES
from tasks.environment import load_environment
from tasks.failure_alerts import FailedRun, environment_secrets, failure_alert, notify_failure, redact
from tasks.zombies import notify_missed_failures
from tradeops.cli.common import apply_file
from tradeops.store import AlertSent, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

TOKEN = "hook-T0ken-" + uuid.uuid4().hex  # in the webhook URL: must never surface
DB_PASSWORD = "pw-" + uuid.uuid4().hex  # in a database DSN: must never surface
TEST_FLOW = "failure-alerts-test"


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook and an Alertmanager v2 API on 127.0.0.1: records every POSTed JSON body; 404 for
    any path Alertmanager does not serve."""

    def __init__(self):
        self.bodies: list[tuple[str, object]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                known = self.path == "/api/v2/alerts" or self.path.startswith("/hook/")
                if known:
                    receiver.bodies.append((self.path, body))
                self.send_response(200 if known else 404)
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def at(self, path_prefix: str) -> list[object]:
        return [body for path, body in self.bodies if path.startswith(path_prefix)]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alerting_environment(tmp_path: Path, receiver: Receiver, databases: str = "") -> tuple[str, str]:
    """An environment whose alerts go to a webhook (medium and up, a token in its URL) and an
    Alertmanager (high and up); returns (name, ops store URL)."""
    name = f"fa-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "tradeops.toml"
    config.write_text(f"""
[environment]
name = "{name}"
data_dir = "ops"
[ops_store]
url = "sqlite:///ops/ops.db"
{databases}
[[alerts]]
name = "ops-hook"
kind = "webhook"
url = {json.dumps(receiver.url(f"/hook/{TOKEN}"))}
min_severity = "medium"
[[alerts]]
name = "alertmanager"
kind = "alertmanager"
url = {json.dumps(receiver.url())}
min_severity = "high"
""")
    apply_file(config, quiet=True)
    return name, load_environment(name).store_url


@task(name="prepare-positions")
def prepare_positions() -> int:
    return 3


@task(name="load-positions")
def load_positions(count: int) -> None:
    raise RuntimeError(f"positions feed answered 503 after {count} pages")


@flow(name=TEST_FLOW, **FAILURE_HOOKS)
def failing_flow(environment: str = "default") -> None:
    load_positions(prepare_positions())


def run_logs(flow_run_id: str) -> str:
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


# -- end to end -----------------------------------------------------------------------------------

def test_a_failed_run_notifies_each_channel_once(tmp_path, receiver, caplog):
    name, store = alerting_environment(tmp_path, receiver)
    caplog.set_level(logging.INFO)

    state = failing_flow(environment=name, return_state=True)
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)

    hook, alertmanager = receiver.at("/hook/"), receiver.at("/api/v2/alerts")
    assert len(hook) == 1 and len(alertmanager) == 1  # one per channel
    webhook = hook[0]
    assert webhook["key"] == f"flow-run-failed:{run_id}" and webhook["severity"] == "high"
    assert webhook["summary"].startswith(f"{TEST_FLOW} failed in task load-positions")
    assert webhook["summary"].endswith(f": flow run {run_id}")
    assert "failed task: load-positions" in webhook["details"]
    assert "positions feed answered 503 after 3 pages" in webhook["details"]
    assert f"environment: {name}" in webhook["details"] and "prepare-positions" not in webhook["details"]
    assert webhook["text"].startswith(f"[HIGH] {name}: {TEST_FLOW} failed in task load-positions")
    [alert] = alertmanager[0]
    assert alert["labels"] == {"alertname": "TradeopsFlowRunFailed", "severity": "high", "environment": name,
                               "target": f"flow:{TEST_FLOW}"}
    assert run_id in alert["annotations"]["summary"] and "load-positions" in alert["annotations"]["description"]

    # The hook running again, or a later sweep, tells nobody twice.
    again = notify_failure(TEST_FLOW, SimpleNamespace(id=run_id, name="x", parameters={"environment": name}),
                           state, severity="high")
    assert again.status == "already sent"
    assert notify_missed_failures({TEST_FLOW: "high"}).get(run_id) is None
    assert len(receiver.bodies) == 2
    with session_for(store) as session:
        rows = session.exec(select(AlertSent).where(AlertSent.alert_key == f"flow-run-failed:{run_id}")).all()
    assert [(r.flow_run_id, r.channels) for r in rows] == [(run_id, "ops-hook,alertmanager")]

    exposed = json.dumps([body for _, body in receiver.bodies]) + run_logs(run_id) + caplog.text
    assert "failure notification for flow run" in exposed  # the hook did log ...
    assert TOKEN not in exposed  # ... but never the channel's URL


def test_a_real_flow_routes_by_severity_and_hides_the_dsn(tmp_path, receiver, caplog):
    """health-check on a database that does not answer: Failed; the condition is P1 critical
    (runbook 004), so the webhook (medium and up) and Alertmanager (high and up) both hear of it,
    once, from the run's condition alert; the failed run adds no per-run alert of its own."""
    dsn = f"postgresql://ops:{DB_PASSWORD}@127.0.0.1:{closed_port()}/platform"
    name, _ = alerting_environment(tmp_path, receiver, f'[[databases]]\nname = "platform"\nurl = "{dsn}"\n')
    caplog.set_level(logging.INFO)

    state = load_flow("health-check")(environment=name, return_state=True)
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)
    assert len(receiver.at("/hook/")) == 1 and len(receiver.at("/api/v2/alerts")) == 1
    webhook = receiver.at("/hook/")[0]
    assert webhook["severity"] == "critical" and webhook["key"].startswith("condition:database_unreachable:platform")
    assert "platform" in webhook["details"]
    assert receiver.at("/api/v2/alerts")[0][0]["labels"]["alertname"] == "database_unreachable"
    exposed = json.dumps([body for _, body in receiver.bodies]) + run_logs(run_id) + caplog.text
    assert DB_PASSWORD not in exposed and TOKEN not in exposed


def test_every_tradeops_flow_has_the_hooks():
    for name in FLOWS:
        flow_fn = load_flow(name)
        assert notify_on_failure in flow_fn.on_failure_hooks, name
        assert notify_on_failure in flow_fn.on_crashed_hooks, name


# -- pieces ---------------------------------------------------------------------------------------

def test_severity_table():
    assert {spec.severity for spec in REGISTRY} <= set(SEVERITIES)
    assert set(flow_severities()) == set(FLOWS)
    assert severity_for("daily-backup") == "critical" and severity_for("health-check") == "medium"
    assert severity_for("a-flow-nobody-rated") == "high"


def test_the_reason_is_redacted_before_it_is_cut(tmp_path, receiver):
    dsn = f"postgresql://ops:{DB_PASSWORD}@127.0.0.1:5/platform"
    name, _ = alerting_environment(tmp_path, receiver, f'[[databases]]\nname = "platform"\nurl = "{dsn}"\n')
    secrets = environment_secrets(load_environment(name))
    assert receiver.url(f"/hook/{TOKEN}") in secrets and DB_PASSWORD in secrets and f"/hook/{TOKEN}" in secrets

    hook_url = receiver.url(f"/hook/{TOKEN}")
    message = ("x" * 1480 + f" posting to {hook_url} failed; token {TOKEN}; dsn {dsn}; "
               f"password {DB_PASSWORD}; other postgresql://u:hunter2hunter2@db/x")
    run = FailedRun("daily-backup", "r-1", "brave-fox", name, "Failed", False, message,
                    ("upload-artifact",), (f"upload-artifact: PUT {hook_url} failed",),
                    severity=severity_for("daily-backup"))
    alert = failure_alert(run, secrets)
    text = alert.summary + alert.details
    assert TOKEN not in text and DB_PASSWORD not in text and "hunter2" not in text
    assert TOKEN[:12] not in text  # nothing cut in half either
    assert alert.severity == "critical" and alert.key == "flow-run-failed:r-1"
    assert "reason: " + "x" * 1480 in alert.details and "…" in alert.details
    assert redact(f"see {hook_url}/x", secrets) == "see ***/x"


def test_a_hook_never_raises(caplog):
    caplog.set_level(logging.INFO)
    run = SimpleNamespace(id=uuid.uuid4(), name="lost-run", parameters={"environment": "never-applied"})
    notify_on_failure(SimpleNamespace(name=TEST_FLOW, fn=failing_flow.fn), run, Failed(message="boom"))
    assert "not sent" in caplog.text and "never-applied" in caplog.text


def test_a_run_that_fails_because_the_ops_store_is_down_still_alerts(tmp_path, receiver, monkeypatch):
    """daily-backup with its ops store unreachable: nothing to record anything in, and nothing can
    say whether the alert went out before, so it goes out (a repeat beats silence)."""
    name, _ = alerting_environment(tmp_path, receiver)
    monkeypatch.setenv("TRADEOPS_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/ops")
    state = load_flow("daily-backup")(environment=name, return_state=True)
    assert state.is_failed()
    run_id = str(state.state_details.flow_run_id)
    [webhook] = receiver.at("/hook/")
    assert webhook["severity"] == "critical" and run_id in webhook["summary"]
    assert "connection" in webhook["details"].lower()
    assert len(receiver.at("/api/v2/alerts")) == 1


def test_a_run_whose_ops_store_does_not_answer_is_not_started_says_why_in_one_line_and_alerts(
        tmp_path, receiver, monkeypatch, capsys):
    from tradeops.cli.main import main

    name, _ = alerting_environment(tmp_path, receiver)
    monkeypatch.setenv("TRADEOPS_DATABASE_URL", f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:{closed_port()}/ops")
    assert main(["run", "daily-backup", "--set", f"environment={name}", "--json"]) == 1
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["state"] == "NotStarted" and result["flow_run_id"] is None and result["exit_code"] == 1
    assert "daily-backup was not started: the ops store of environment" in result["message"]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and DB_PASSWORD not in out + err
    [webhook] = receiver.at("/hook/")  # critical: both channels hear of it
    assert webhook["severity"] == "critical" and webhook["summary"] == f"daily-backup could not start in {name}"
    assert len(receiver.at("/api/v2/alerts")) == 1
    assert DB_PASSWORD not in json.dumps(receiver.bodies)
