"""Issue 15: access that cannot be talked around.

- Who acts is the OS login mapped in `[access] logins`; `--user` (or TRADEOPS_USER) to act as
  someone else needs `access.impersonate`, and both names are recorded.
- `--set` and `--config` change an environment only for a user holding `config.change`: the
  self-grant of the issue is refused (exit 3, audited, the blocks untouched); an administrator's
  change is applied and audited with old and new values; an unchanged file appends nothing.
- Runs carry their acting user as a Prefect tag (UI and API) and in their first own log line.

On SQLite and PostgreSQL ops stores; the test's real OS login is mapped per environment.
"""

from __future__ import annotations

import json
import uuid

import pygit2
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.sorting import LogSort
from prefect.logging.handlers import APILogHandler
from sqlmodel import select

from blocks import TradeopsEnvironment
from tradeops.cli.main import main
from tradeops.store import AuditEntry, session_for
from tradeops.store.identity import os_login

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

LOGIN = os_login()
USERS = ('{ alice = "strategy_developer", bob = "senior_trader", carol = "compliance_officer", '
         'admin = "system_administrator", svc-prefect = "system_administrator" }')


def write_config(folder, name: str, store: str, login_user: str = "admin") -> str:
    path = folder / f"{name}.toml"
    path.write_text(f'[environment]\nname = "{name}"\ndata_dir = "ops"\n[ops_store]\nurl = "{store}"\n'
                    f'[offsite]\nurl = "file://{folder / "offsite"}"\n'
                    '[[git]]\nname = "strategies"\nroot = "repos"\n'  # experiments name a strategy repository here
                    f'[access]\nusers = {USERS}\nuser = "svc-prefect"\n'
                    f'logins = {{ {json.dumps(LOGIN)} = "{login_user}" }}\n')
    return str(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request, tmp_path, monkeypatch):
    """An environment whose administrator is the test's OS login; commands find it by name."""
    name = f"id-{uuid.uuid4().hex[:6]}"
    store = request.getfixturevalue("pg_database") if request.param == "postgresql" else \
        f"sqlite:///{tmp_path / 'ops.db'}"
    config = write_config(tmp_path, name, store)
    pygit2.init_repository(str(tmp_path / "repos" / "s"))  # strategy `s`
    assert main(["apply", "--config", config]) == 0
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    monkeypatch.delenv("TRADEOPS_USER", raising=False)
    return name, store, config, tmp_path


def entries(store: str) -> list[AuditEntry]:
    with session_for(store) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.id)).all())


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_self_grant_through_set_is_refused_and_an_administrators_change_is_audited(env, capsys):
    name, store, config, _ = env
    report = ["run", "compliance-report", "--config", config, "--set", "period=2026-12", "--json"]
    assert main([*report, "--user", "alice"]) == 3  # alice lacks compliance.report
    assert "lacks permission compliance.report" in last_json(capsys)["message"]
    before = len(entries(store))

    grant = ["--set", 'access.users.alice="compliance_officer"']
    assert main([*report, *grant, "--user", "alice"]) == 3
    assert "lacks permission config.change" in capsys.readouterr().err
    assert TradeopsEnvironment.load(name).access_users["alice"] == "strategy_developer"  # nothing written
    [refusal] = entries(store)[before:]  # the refusal, and no run
    details = json.loads(refusal.details)
    assert (refusal.operation, refusal.user, refusal.success) == ("config_apply", "alice", False)
    assert (details["login"], details["impersonated_by"], details["permission"]) == (LOGIN, "admin", "config.change")
    assert {"key": f"{name}.access_users.alice", "old": "strategy_developer", "new": "compliance_officer"} in \
        details["changes"]
    assert main(["audit", "verify", "--user", "alice", "--no-exports"]) == 3  # the grant did not stay

    assert main([*report, *grant]) == 0, capsys.readouterr()  # the login's administrator may
    answer = last_json(capsys)
    assert answer["state"] == "Completed"
    assert TradeopsEnvironment.load(name).access_users["alice"] == "compliance_officer"
    applied = [e for e in entries(store) if e.operation == "config_apply" and e.success][-1]
    details = json.loads(applied.details)
    assert applied.user == "admin" and details["login"] == LOGIN and "impersonated_by" not in details
    assert details["changes"] == [{"key": f"{name}.access_users.alice", "old": "strategy_developer",
                                   "new": "compliance_officer"}]
    assert details["blocks"] == [name] and details["overrides"] == ["access.users.alice"]


def test_an_unchanged_file_writes_and_appends_nothing(env, capsys):
    name, store, config, _ = env
    count = len(entries(store))
    for _ in range(2):
        assert main(["audit", "verify", "--config", config, "--no-exports"]) == 0
    assert len(entries(store)) == count  # neither a config_apply nor an entry for reading
    assert main(["apply", "--config", config]) == 0
    assert "unchanged" in capsys.readouterr().err and len(entries(store)) == count


def test_impersonation_needs_its_permission_and_records_both_names(env, monkeypatch, capsys):
    name, store, _, folder = env
    # a login that maps to alice acts as alice, and may not act as anyone else
    (folder / "alice").mkdir()
    alice_config = write_config(folder / "alice", f"{name}-a", store, login_user="alice")
    assert main(["apply", "--config", alice_config]) == 0  # a new environment: its own access table decides
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", f"{name}-a")
    assert main(["experiment", "list", "--json"]) == 0  # as alice: experiment.read
    capsys.readouterr()
    before = len(entries(store))
    assert main(["experiment", "list", "--user", "bob"]) == 3
    assert "acts as 'alice', who may not act as 'bob'" in capsys.readouterr().err
    monkeypatch.setenv("TRADEOPS_USER", "admin")  # the variable is a request too, not an identity
    assert main(["experiment", "list"]) == 3
    denied = entries(store)[before:]
    assert [(e.user, e.success) for e in denied] == [("alice", False), ("alice", False)]
    assert [json.loads(e.details)["requested_user"] for e in denied] == ["bob", "admin"]
    assert all(json.loads(e.details)["permission"] == "access.impersonate" for e in denied)
    # nor can alice's login reconfigure her environment, even with the same access table
    monkeypatch.delenv("TRADEOPS_USER")
    assert main(["apply", "--config", alice_config, "--user", "alice"]) == 0  # unchanged: nothing to authorize
    changed = folder / "alice" / "changed.toml"
    changed.write_text(open(alice_config).read().replace('user = "svc-prefect"', 'user = "admin"'))
    assert main(["apply", "--config", str(changed)]) == 3
    assert "lacks permission config.change" in capsys.readouterr().err
    assert TradeopsEnvironment.load(f"{name}-a").access_default_user == "svc-prefect"

    # the administrator's login may act as alice: alice's permissions, both names on record
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    assert main(["experiment", "create", "--user", "alice", "--strategy", "s", "--param", "x=1",
                 "--capital", "0.1%", "--json"]) == 0
    created = entries(store)[-1]
    assert (created.operation, created.user) == ("experiment_create", "alice")
    assert json.loads(created.details)["login"] == LOGIN and json.loads(created.details)["impersonated_by"] == "admin"
    assert main(["experiment", "start", json.loads(capsys.readouterr().out)["name"], "--user", "alice"]) == 3


def run_logs(flow_run_id: str) -> list[str]:
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                sort=LogSort.TIMESTAMP_ASC)
    return [log.message for log in logs]


def run_tags(flow_run_id: str) -> list[str]:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).tags


def test_runs_carry_their_acting_user_in_a_tag_and_their_first_line(env, capsys):
    name, store, _, _ = env
    assert main(["run", "compliance-report", "--set", "period=2020-01", "--user", "carol", "--json"]) == 0
    run_id = last_json(capsys)["flow_run_id"]
    assert {"user:carol", "impersonated-by:admin"} <= set(run_tags(run_id))
    messages = run_logs(run_id)
    assert messages[0].startswith("Beginning flow run")  # Prefect's own line, then the flow's first
    assert messages[1] == f"acting user: carol (compliance_officer), OS login {LOGIN}, impersonated by admin"
    report = [e for e in entries(store) if e.operation == "compliance_report"][-1]
    assert report.user == "carol" and report.flow_run_id == run_id
    assert json.loads(report.details)["impersonated_by"] == "admin"

    assert main(["run", "compliance-report", "--set", "period=2020-02", "--json"]) == 0  # as the login's user
    run_id = last_json(capsys)["flow_run_id"]
    assert "user:admin" in run_tags(run_id) and not any(t.startswith("impersonated-by:") for t in run_tags(run_id))

    # a run nobody started through `tradeops run` (a schedule, a worker): the service user, tagged when it starts
    from flows.compliance_report import compliance_report

    state = compliance_report(environment=name, period="2020-03", return_state=True)
    run_id = str(state.state_details.flow_run_id)
    assert "user:svc-prefect" in run_tags(run_id)
    assert run_logs(run_id)[1] == "acting user: svc-prefect (system_administrator)"
    assert [e for e in entries(store) if e.operation == "compliance_report"][-1].user == "svc-prefect"
