"""Every role of runbook 000's table against every permission tradeops checks (issue 7).

The expected grants come from the runbook's own `rbac.yml`, transcribed below, not from
tasks/access.py. Then, through the real CLI on the sandbox, every command a role may not run is
run as a user of that role: it exits 3 naming the missing permission, and the denial is in the
audit trail with that user.
"""

from __future__ import annotations

import json

import pytest
import yaml
from sqlmodel import select

from conftest import apply_as_own_environment
from flows.registry import flow_permissions
from tasks.access import ROLES, AccessDenied, actor_for
from tradeops.cli.commands.audit import PERMISSION as AUDIT_PERMISSION
from tradeops.cli.main import main
from tradeops.cli.commands.experiment import PERMISSIONS as EXPERIMENT_PERMISSIONS
from tradeops.cli.commands.incident import PERMISSIONS as INCIDENT_PERMISSIONS
from tradeops.store import AuditEntry, session_for
from tradeops.cli.commands.strategy import PERMISSIONS as STRATEGY_PERMISSIONS

# every row runs the real CLI against the sandbox's blocks: the session's Prefect server
pytestmark = pytest.mark.prefect

# runbook 000 "Role-Based Access Control", /opt/synaptic/config/rbac.yml (its roles section)
RUNBOOK_RBAC = yaml.safe_load("""
roles:
  strategy_developer:
    permissions: [git.read, git.commit, git.create_version, experiment.create, experiment.read, experiment.update]
    restrictions: [{max_capital_allocation: 1000000}, {experiment_duration_max: 90}]
  senior_trader:
    permissions: [git.read, git.commit, git.create_version, git.merge, experiment.create, experiment.read,
                  experiment.update, experiment.start, experiment.stop]
    restrictions: [{max_capital_allocation: 10000000}, {experiment_duration_max: 180}]
  system_administrator:
    permissions: ["*"]
    restrictions: {}
  compliance_officer:
    permissions: [audit.read, experiment.read, compliance.report, compliance.investigate]
    restrictions: [{read_only: true}]
""")["roles"]

# every permission some tradeops command or flow checks, plus every one the runbook names
CHECKED = (set(STRATEGY_PERMISSIONS.values()) | set(EXPERIMENT_PERMISSIONS.values()) | set(flow_permissions().values())
           | set(INCIDENT_PERMISSIONS.values()) | {AUDIT_PERMISSION})
ALL_PERMISSIONS = sorted(CHECKED | {p for role in RUNBOOK_RBAC.values() for p in role["permissions"] if p != "*"})
USERS = {"strategy_developer": "alice", "senior_trader": "bob", "system_administrator": "admin",
         "compliance_officer": "carol"}  # the sandbox's [access] users


def runbook_allows(role: str, permission: str) -> bool:
    granted = RUNBOOK_RBAC[role]["permissions"]
    return "*" in granted or permission in granted


def test_the_role_table_is_the_runbooks():
    assert set(ROLES) == set(RUNBOOK_RBAC)
    for name, role in ROLES.items():
        restrictions = {k: v for item in (RUNBOOK_RBAC[name]["restrictions"] or []) for k, v in item.items()}
        assert role.permissions == set(RUNBOOK_RBAC[name]["permissions"])
        assert role.max_capital_usd == restrictions.get("max_capital_allocation")
        assert role.max_duration_days == restrictions.get("experiment_duration_max")
        assert role.read_only == restrictions.get("read_only", False)


@pytest.mark.parametrize("role", sorted(RUNBOOK_RBAC))
@pytest.mark.parametrize("permission", ALL_PERMISSIONS)
def test_each_role_against_each_permission(role, permission):
    actor = actor_for({"u": role}, "u")
    if runbook_allows(role, permission):
        actor.require(permission)
    else:
        with pytest.raises(AccessDenied, match=f"lacks permission {permission}"):
            actor.require(permission)


def test_a_user_without_a_role_is_denied_everything():
    for permission in ALL_PERMISSIONS:
        with pytest.raises(AccessDenied, match="has no role"):
            actor_for({"alice": "strategy_developer"}, "mallory").require(permission)


# One command per checked permission, as an operator would type it; {experiment} is a draft
# experiment created by the administrator in the test's own environment.
COMMANDS = {
    "git.read": ["strategy", "versions", "momentum_alpha"],
    "git.create_version": ["strategy", "version", "momentum_alpha", "--bump", "patch", "-m", "matrix"],
    "git.merge": ["strategy", "promote", "momentum_alpha", "v9.9.9"],
    "experiment.create": ["experiment", "create", "--strategy", "momentum_alpha", "--param", "x=1",
                          "--capital", "100000"],
    "experiment.read": ["experiment", "list"],
    "experiment.start": ["experiment", "start", "{experiment}"],
    "experiment.stop": ["experiment", "conclude", "{experiment}", "--action", "rollback"],
    "experiment.override": ["experiment", "conclude", "{experiment}", "--action", "promote", "--override",
                            "--note", "matrix"],
    "audit.read": ["audit", "verify", "--no-exports"],
    "compliance.report": ["run", "compliance-report"],
    "backup.restore": ["run", "restore"],
    "database.maintain": ["run", "db-maintenance"],
    "dependency.update": ["run", "dependency-update"],
    "incident.read": ["incident", "list"],
    "incident.ack": ["incident", "ack", "1"],
    "incident.note": ["incident", "note", "1", "matrix"],
    "incident.resolve": ["incident", "resolve", "1"],
    "incident.silence": ["incident", "silence", "certificate_due:cert:api.pem", "--for", "1h"],
    "capacity.report": ["run", "capacity-report"],
    "ops.report": ["run", "ops-report"],
    "performance.baseline": ["run", "performance-baselines"],
    "correlation.update": ["run", "correlation-matrix"],
}
DENIED = [(role, permission) for role in sorted(RUNBOOK_RBAC) for permission in sorted(COMMANDS)
          if not runbook_allows(role, permission)]


def test_every_checked_permission_has_a_command_here():
    assert set(COMMANDS) == CHECKED


@pytest.fixture(scope="module")
def matrix_env(pg_sandbox, tmp_path_factory):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path_factory.mktemp("matrix"), "acm")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRADEOPS_ENVIRONMENT", name)
        assert main(["experiment", "create", "--user", "admin", "--strategy", "momentum_alpha", "--param", "x=1",
                     "--capital", "100000", "--name", "matrix-draft"]) == 0
        yield name, store, patch


def denials(store: str, user: str) -> list[dict]:
    with session_for(store) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.user == user, AuditEntry.success.is_(False))).all()
    return [json.loads(row.details) for row in rows]


@pytest.mark.parametrize("role, permission", DENIED)
def test_a_denied_command_exits_3_and_is_audited(matrix_env, capsys, role, permission):
    name, store, _ = matrix_env
    user = USERS[role]
    before = len(denials(store, user))
    argv = [part.replace("{experiment}", "matrix-draft") for part in COMMANDS[permission]]
    argv[2:2] = ["--json"] if argv[0] == "run" else []
    code = main([*argv, "--user", user])
    out, err = capsys.readouterr()
    expected = f"user '{user}' ({role}) lacks permission {permission}"
    assert code == 3
    if argv[0] == "run":  # a flow run: it ends Failed with the denial
        answer = json.loads(out.strip().splitlines()[-1])
        assert answer["state"] == "Failed" and expected in answer["message"]
    else:
        assert expected in err
    recorded = denials(store, user)
    assert len(recorded) == before + 1 and expected in recorded[-1]["denied"]
