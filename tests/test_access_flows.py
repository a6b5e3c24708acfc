"""Privileged flows check the acting user's role first; a denial touches nothing and is audited."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from flows.registry import flow_permissions
from tasks.access import ROLES, AccessDenied, actor_for
from conftest import apply_as_own_environment
from tradeops.cli.main import main
from tradeops.store import AuditEntry, session_for

pytestmark = pytest.mark.prefect  # runs flows on the session's Prefect server


@pytest.fixture
def sandbox_env(pg_sandbox, tmp_path):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "acl")
    return name, store


def denials(store: str, operation: str) -> list[AuditEntry]:
    with session_for(store) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.operation == operation,
                                                          AuditEntry.success.is_(False))).all())


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("flow", ["db-maintenance", "restore", "pitr-restore"])
def test_only_administrators_run_privileged_flows(role, flow):
    actor = actor_for({"u": role}, "u")
    if role == "system_administrator":
        actor.require(flow_permissions()[flow])
    else:
        with pytest.raises(AccessDenied, match=flow_permissions()[flow]):
            actor.require(flow_permissions()[flow])


@pytest.mark.parametrize("flow, operation", [("restore", "backup_restore"), ("db-maintenance", "db_maintenance"),
                                             ("pitr-restore", "pitr_restore")])
def test_a_denied_flow_touches_nothing_and_is_audited(sandbox_env, monkeypatch, capsys, flow, operation):
    name, store = sandbox_env
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    code = main(["run", flow, "--user", "bob", "--json"])  # a senior trader: no restores, no maintenance
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 3 and answer["state"] == "Failed"  # access denied
    assert f"user 'bob' (senior_trader) lacks permission {flow_permissions()[flow]}" in answer["message"]
    [denied] = denials(store, operation)
    assert denied.user == "bob" and flow_permissions()[flow] in json.loads(denied.details)["denied"]
    with session_for(store) as session:  # nothing else happened: only the denial is on record
        assert [e.operation for e in session.exec(select(AuditEntry)).all() if e.operation != "config_apply"] == \
            [operation]


def test_runs_act_as_the_service_user_unless_tradeops_run_started_them(sandbox_env, monkeypatch):
    from blocks import TradeopsEnvironment
    from tasks.access import current_actor
    from tasks.environment import load_environment
    from tradeops.store.identity import Identity, bind_identity, identity_scoped

    name, _ = sandbox_env
    monkeypatch.setenv("TRADEOPS_USER", "alice")  # a claim in the environment binds no run
    actor = current_actor(load_environment(name))
    assert (actor.user, actor.role) == ("svc-prefect", "system_administrator")
    assert TradeopsEnvironment.load(name).access_default_user == "svc-prefect"

    @identity_scoped
    def command() -> str:  # what `tradeops run` binds before it runs the flow in its process
        bind_identity(Identity("alice", "ops1", impersonated_by="admin"))
        return current_actor(load_environment(name)).role

    assert command() == "strategy_developer"
    assert current_actor(load_environment(name)).user == "svc-prefect"  # the binding ended with the command
