"""Incidents: one per condition, the timeline, response targets, the post-mortem, the CLI contract."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from tasks.alert_groups import Finding, plan_notices
from tasks.incidents import (
    IncidentStateError, NoSuchIncident, acknowledge, add_note, get_incident, list_incidents, open_incident,
    record_on_open_incident, resolve, resolve_condition,
)
from tasks.incidents.postmortem import postmortem_markdown
from tests.conftest import apply_as_own_environment
from tradeops.cli.main import main
from tradeops.clock import frozen_at
from tradeops.store import AuditEntry, session_for
from tradeops.store.engine import upgrade

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ops.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    upgrade(url)
    return url


def test_one_open_incident_per_condition_with_its_timeline(store):
    with frozen_at(T0):
        first = open_incident(store, "prod", "database_unreachable:platform", "platform does not answer", "critical",
                              "svc-prefect", "run-1", "3 remediations failed")
    with frozen_at(T0 + timedelta(minutes=5)):
        again = open_incident(store, "prod", "database_unreachable:platform", "platform does not answer", "critical",
                              "svc-prefect", "run-2", "still failing")
        record_on_open_incident(store, "prod", "database_unreachable:platform", "remediation", "svc-prefect",
                                "restart: failed", "run-2")
    assert first.created and not again.created and again.incident.id == first.incident.id
    incident = first.incident
    assert (incident.severity, incident.sev, incident.status) == ("P1", "SEV-1", "open")
    # runbook 004/003: P1 respond within 15 minutes, SEV-1 resolve within 4 hours
    assert incident.response_due_at == (T0 + timedelta(minutes=15)).isoformat()
    assert incident.resolution_due_at == (T0 + timedelta(hours=4)).isoformat()

    with frozen_at(T0 + timedelta(minutes=12)):
        acknowledge(store, "prod", incident.id, "admin", "looking")
    with frozen_at(T0 + timedelta(minutes=20)):
        add_note(store, "prod", incident.id, "admin", "disk full on the primary")
    with frozen_at(T0 + timedelta(minutes=50)):
        done = resolve(store, "prod", incident.id, "admin", "freed space, restarted")
    assert done.status == "resolved" and done.seconds_to_acknowledge == 12 * 60 and done.seconds_to_resolve == 50 * 60
    assert not done.response_breached
    assert [(e.kind, e.actor, e.flow_run_id) for e in done.timeline] == [
        ("opened", "svc-prefect", "run-1"), ("escalation", "svc-prefect", "run-2"),
        ("remediation", "svc-prefect", "run-2"), ("ack", "admin", None), ("note", "admin", None),
        ("resolved", "admin", None)]
    assert [e.at for e in done.timeline][3:] == [(T0 + timedelta(minutes=m)).isoformat() for m in (12, 20, 50)]

    # resolved: the same condition opens a new incident
    with frozen_at(T0 + timedelta(hours=2)):
        later = open_incident(store, "prod", "database_unreachable:platform", "again", "high", "svc-prefect")
    assert later.created and later.incident.id != incident.id and later.incident.severity == "P2"
    assert [i.id for i in list_incidents(store, "prod", ("open", "acknowledged"))] == [later.incident.id]
    assert list_incidents(store, "other") == []


def test_state_rules_and_condition_resolution(store):
    with frozen_at(T0):
        opened = open_incident(store, "prod", "certificate_due:api", "api certificate due", "P3", "svc").incident
    with pytest.raises(NoSuchIncident):
        acknowledge(store, "other-env", opened.id, "admin")
    with frozen_at(T0 + timedelta(hours=5)):  # P3 respond within 4 hours: missed
        assert get_incident(store, "prod", opened.id).response_breached
        cleared = resolve_condition(store, "prod", "certificate_due:api", "svc", "condition cleared", "run-9")
    assert cleared.status == "resolved" and cleared.timeline[-1].flow_run_id == "run-9"
    with pytest.raises(IncidentStateError):
        acknowledge(store, "prod", opened.id, "admin")
    with pytest.raises(IncidentStateError):
        resolve(store, "prod", opened.id, "admin")
    assert resolve_condition(store, "prod", "certificate_due:api", "svc", "again") is None


def test_postmortem_is_filled_from_the_timeline(tmp_path):
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(store)
    with frozen_at(T0):
        incident = open_incident(store, "prod", "platform_api_down:api", "platform API down", "critical", "svc",
                                 "run-1").incident
    with frozen_at(T0 + timedelta(minutes=1)):
        record_on_open_incident(store, "prod", "platform_api_down:api", "remediation", "svc",
                                "restart_process api: failed (supervisor exited 1)", "run-2")
    with frozen_at(T0 + timedelta(minutes=30)):  # P1: 15 minutes to respond, missed
        acknowledge(store, "prod", incident.id, "admin")
        add_note(store, "prod", incident.id, "admin", "supervisor config pointed at an old venv")
    with frozen_at(T0 + timedelta(minutes=45)):
        done = resolve(store, "prod", incident.id, "admin", "fixed the venv path")
    text = postmortem_markdown(done)
    assert text.startswith("# Post-mortem: incident")
    for heading in ("## Timeline", "## Initial response (first 15 minutes)", "## Investigation", "## Resolution",
                    "## Post-incident"):
        assert heading in text
    assert "| time to acknowledge | 30.0 min (target by 2026-12-01T09:15:00+00:00: MISSED) |" in text
    assert "- 2026-12-01T09:30:00+00:00 admin: supervisor config pointed at an old venv" in text
    assert "restart_process api: failed (supervisor exited 1)" in text
    assert "| 2026-12-01T09:45:00+00:00 | resolved | admin |  | fixed the venv path |" in text


def test_cli_lists_acks_notes_resolves_audited_and_refuses(pg_sandbox, tmp_path, capsys, monkeypatch):
    _, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "inc")
    incident = open_incident(store, name, "platform_api_down:api", "platform API down", "P1", "svc-prefect").incident
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)  # the applied environment, no config file
    monkeypatch.delenv("TRADEOPS_CONFIG", raising=False)
    assert main(["incident", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(i["id"], i["severity"], i["status"]) for i in listed] == [(incident.id, "P1", "open")]

    assert main(["incident", "ack", str(incident.id), "--user", "alice"]) == 3  # no incident.ack
    assert main(["incident", "ack", "999"]) == 2
    assert main(["incident", "ack", str(incident.id), "--note", "on it"]) == 0
    assert main(["incident", "ack", str(incident.id)]) == 2  # acknowledged already
    assert main(["incident", "note", str(incident.id), "rolled back the deploy"]) == 0
    assert main(["incident", "resolve", str(incident.id), "--json"]) == 0
    resolved = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert resolved["status"] == "resolved"
    assert [e["kind"] for e in resolved["timeline"]] == ["opened", "ack", "note", "resolved"]
    assert main(["incident", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == []
    out = tmp_path / "pm.md"
    assert main(["incident", "postmortem", str(incident.id), "--out", str(out)]) == 0
    assert "rolled back the deploy" in out.read_text()
    # a silence: quiet until it expires, then the condition notifies again
    with pytest.raises(SystemExit) as refused:  # longer than 7 days: a usage error
        main(["incident", "silence", "data_stale:platform", "--for", "8d"])
    assert refused.value.code == 2
    with frozen_at(T0):
        assert main(["incident", "silence", "data_stale:platform", "--for", "2h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["silenced_until"] == (
        T0 + timedelta(hours=2)).isoformat()
    stale = Finding("data_stale:platform", "data_stale", "platform", "high", "platform data is stale")
    with frozen_at(T0 + timedelta(hours=1)):
        assert [n.kind for n in plan_notices(store, name, [stale], {stale.key})] == ["silenced"]
    with frozen_at(T0 + timedelta(hours=2, minutes=5)):
        assert [n.kind for n in plan_notices(store, name, [stale], {stale.key})] == ["firing"]
    with session_for(store) as session:
        audited = session.exec(select(AuditEntry).where(AuditEntry.operation.like("incident_%"))
                               .order_by(AuditEntry.id)).all()
    assert [(a.operation, a.user, a.success) for a in audited] == [
        ("incident_ack", "alice", False), ("incident_ack", "admin", True), ("incident_note", "admin", True),
        ("incident_resolve", "admin", True), ("incident_silence", "admin", True)]
    assert json.loads(audited[0].details)["permission"] == "incident.ack"


def test_metrics_count_open_incidents_and_time_to_acknowledge_and_resolve(tmp_path):
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from tasks.metrics import registry_for

    store = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(store)
    with frozen_at(T0):
        first = open_incident(store, "prod", "a:x", "a", "P1", "svc").incident
        open_incident(store, "prod", "b:y", "b", "P1", "svc")
        third = open_incident(store, "prod", "c:z", "c", "P3", "svc").incident
    with frozen_at(T0 + timedelta(minutes=10)):
        acknowledge(store, "prod", first.id, "admin")
    with frozen_at(T0 + timedelta(hours=2)):
        resolve(store, "prod", first.id, "admin")
        acknowledge(store, "prod", third.id, "admin")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry_for("prod", store)).decode())
               for s in f.samples}

    def value(name, **labels):
        return samples.get((name, tuple(sorted({"environment": "prod", **labels}.items()))))

    assert [value("tradeops_incidents_open", severity=s) for s in ("P1", "P2", "P3", "P4")] == [1, 0, 1, 0]
    assert value("tradeops_incident_acknowledge_seconds_count", severity="P1") == 1
    assert value("tradeops_incident_acknowledge_seconds_sum", severity="P1") == 600
    assert value("tradeops_incident_acknowledge_seconds_bucket", severity="P1", le="900.0") == 1  # within 15 min
    assert value("tradeops_incident_acknowledge_seconds_bucket", severity="P3", le="3600.0") == 0
    assert value("tradeops_incident_acknowledge_seconds_bucket", severity="P3", le="14400.0") == 1
    assert value("tradeops_incident_resolve_seconds_sum", severity="P1") == 7200
