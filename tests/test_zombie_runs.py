"""Zombie runs for real: a flow runs in its own process against the test server, is SIGKILLed
while Running, and the sweep (or Prefect's automation) marks it Crashed and notifies once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from sqlmodel import select

from conftest import REPO
from tasks.zombies import (
    AUTOMATION_NAME, HEARTBEAT_EVENT, HOST_LABEL, ensure_zombie_automation, notify_missed_failures, sweep_zombies,
)
from test_failure_alerts import TOKEN, Receiver, alerting_environment, receiver  # noqa: F401 - the fixture
from tradeops.cli.main import main
from tradeops.store import FlowRunSummary, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

STUCK_FLOW = """
import sys, time
from prefect import flow, task
from flows.hooks import FAILURE_HOOKS

@task(name="wait-for-feed")
def wait_for_feed() -> None:
    time.sleep(600)

@flow(name=sys.argv[1], **FAILURE_HOOKS)
def stuck(environment: str = "default") -> None:
    wait_for_feed()

stuck(environment=sys.argv[2])
"""


@pytest.fixture
def stuck_runs(tmp_path):
    """Start a flow that sleeps in its own process; every process is killed at the end."""
    script = tmp_path / "stuck.py"
    script.write_text(STUCK_FLOW)
    processes: list[subprocess.Popen] = []

    def start(flow_name: str, environment: str, **env: str):
        environ = {**os.environ, "PREFECT_API_URL": os.environ["TRADEOPS_TEST_API_URL"],
                   "PYTHONPATH": str(REPO), **env}
        process = subprocess.Popen([sys.executable, str(script), flow_name, environment], cwd=REPO, env=environ,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        return process, running_run(flow_name, process)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def running_run(flow_name: str, process: subprocess.Popen, timeout: float = 120):
    """The run, once Running, labelled with its process by the on_running hook, and in its task."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the flow process ended before running"
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))
            if runs and runs[0].state.is_running() and runs[0].labels.get("tradeops.pid"):
                tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id])))
                if any(t.state_type == StateType.RUNNING for t in tasks):
                    return runs[0]
            time.sleep(0.5)
    pytest.fail(f"no Running run of {flow_name} within {timeout} s")


def read_run(run_id):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_one_notification_each(receiver: Receiver, run_id: str) -> None:
    hook, alertmanager = receiver.at("/hook/"), receiver.at("/api/v2/alerts")
    assert len(hook) == 1 and len(alertmanager) == 1
    assert run_id in hook[0]["summary"] and hook[0]["key"] == f"flow-run-failed:{run_id}"
    assert "crashed in task wait-for-feed" in hook[0]["summary"]  # the task it died in
    [alert] = alertmanager[0]
    assert alert["labels"]["alertname"] == "TradeopsFlowRunCrashed" and run_id in alert["annotations"]["summary"]
    assert TOKEN not in json.dumps([body for _, body in receiver.bodies])


def test_sweep_crashes_a_killed_run_and_notifies_once(tmp_path, receiver, stuck_runs):
    name, store = alerting_environment(tmp_path, receiver)
    flow_name = f"zombie-{uuid.uuid4().hex[:6]}"
    process, run = stuck_runs(flow_name, name)
    assert run.labels["tradeops.pid"] == str(process.pid)

    [alive] = sweep_zombies({flow_name: "high"})
    assert alive.verdict == "alive" and f"process {process.pid} is running" in alive.evidence
    kill(process)

    [verdict] = sweep_zombies({flow_name: "high"})
    assert (verdict.flow_run_id, verdict.verdict, verdict.notification) == (str(run.id), "crashed", "sent")
    assert f"its process {process.pid}" in verdict.evidence and "is gone" in verdict.evidence
    crashed = read_run(run.id)
    assert crashed.state.is_crashed() and "is gone" in crashed.state.message
    assert_one_notification_each(receiver, str(run.id))
    with session_for(store) as session:  # its evidence is in the ops store too, though it never reported
        [summary] = session.exec(select(FlowRunSummary).where(FlowRunSummary.flow_run_id == str(run.id))).all()
    assert (summary.flow_name, summary.state) == (flow_name, "Crashed") and "wait-for-feed" in summary.summary_markdown

    assert sweep_zombies({flow_name: "high"}) == []  # nothing Running any more
    assert notify_missed_failures({flow_name: "high"}) == {}  # every channel had it
    assert len(receiver.bodies) == 2


def test_without_its_process_here_the_heartbeat_decides(tmp_path, receiver, stuck_runs):
    """A run labelled with another host: only its heartbeats (events) tell whether it lives."""
    name, _ = alerting_environment(tmp_path, receiver)
    flow_name = f"zombie-hb-{uuid.uuid4().hex[:6]}"
    process, run = stuck_runs(flow_name, name, PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30")
    with get_client(sync_client=True) as client:
        client.update_flow_run_labels(run.id, {HOST_LABEL: "another-host"})
        deadline = time.monotonic() + 60
        while not client.read_events(filter=EventFilter(
                event=EventNameFilter(name=[HEARTBEAT_EVENT]),
                resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"])), limit=1).events:
            assert time.monotonic() < deadline, "no heartbeat event recorded"
            time.sleep(0.5)

    [alive] = sweep_zombies({flow_name: "high"}, timedelta(minutes=10))
    assert alive.verdict == "alive" and alive.evidence.startswith("last heartbeat")
    kill(process)
    time.sleep(2)
    [verdict] = sweep_zombies({flow_name: "high"}, timedelta(seconds=1))
    assert verdict.verdict == "crashed" and verdict.evidence.startswith("no heartbeat for")
    assert read_run(run.id).state.is_crashed()
    assert_one_notification_each(receiver, str(run.id))


def test_prefects_zombie_automation_crashes_the_run_and_the_sweep_notifies(tmp_path, receiver, stuck_runs):
    """The server's own detection: heartbeats every 30 s, the automation waits 35 s after the
    last one, then changes the run to Crashed; no hook runs, the next sweep notifies."""
    name, _ = alerting_environment(tmp_path, receiver)
    flow_name = f"zombie-am-{uuid.uuid4().hex[:6]}"
    action, automation_id = ensure_zombie_automation(timedelta(seconds=35), [flow_name])
    try:
        process, run = stuck_runs(flow_name, name, PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30")
        kill(process)
        deadline = time.monotonic() + 150
        while not (state := read_run(run.id).state).is_crashed():
            assert state.is_running() and time.monotonic() < deadline, f"still {state.name}"
            time.sleep(2)
        assert "no heartbeat for 35 s" in state.message
        assert receiver.bodies == []  # nobody was there to run a hook
        assert notify_missed_failures({flow_name: "high"}) == {str(run.id): "sent"}
        assert_one_notification_each(receiver, str(run.id))
    finally:
        with get_client(sync_client=True) as client:
            client.delete_automation(automation_id)


def test_setup_automations_command_is_idempotent(capsys):
    try:
        assert main(["server", "setup-automations", "--within", "600", "--json"]) == 0
        first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert main(["server", "setup-automations", "--within", "900", "--json"]) == 0
        second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (first["action"], second["action"], second["id"]) == ("created", "updated", first["id"])
        with get_client(sync_client=True) as client:
            [automation] = client.read_automations_by_name(AUTOMATION_NAME)
        assert automation.trigger.within == timedelta(seconds=900)
        assert "daily-backup" in automation.trigger.match_related["prefect.resource.name"]
        assert automation.actions[0].type == "change-flow-run-state"
    finally:
        with get_client(sync_client=True) as client:
            for automation in client.read_automations_by_name(AUTOMATION_NAME):
                client.delete_automation(automation.id)
    with pytest.raises(SystemExit) as exited:  # argparse refuses it: under 30 s, heartbeats cannot tell
        main(["server", "setup-automations", "--within", "5"])
    assert exited.value.code == 2


def test_sweep_command_reports(capsys):
    assert main(["server", "sweep", "--notify-window-minutes", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report) == {"running", "notified"}
    assert main(["server", "sweep", "--notify-window-minutes", "0"]) == 0
    assert "running flow run(s) checked" in capsys.readouterr().out
