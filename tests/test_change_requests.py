"""`tradeops change ...`: runbook 003's change requests, approvals by risk and role, audited.

The sandbox's users: alice (strategy_developer), bob (senior_trader), admin and svc-prefect
(system_administrator), carol (compliance_officer). Approvals: technical needs git.merge, business
experiment.start, security compliance.investigate; never the submitter, one approval per user.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from conftest import apply_as_own_environment
from tasks.changes import APPROVAL_PERMISSIONS, REQUIRED_APPROVALS
from tasks.access import ROLES
from tradeops.cli.main import main
from tradeops.store import AuditEntry, ChangeApproval, ChangeRequest, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


@pytest.fixture
def change_env(pg_sandbox, tmp_path, monkeypatch):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "cr")
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    return name, store


def change(capsys, *argv: str) -> tuple[int, dict | list | None, str]:
    code = main(["change", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def entries(store: str, operation: str) -> list[AuditEntry]:
    with session_for(store) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.operation == operation)
                                 .order_by(AuditEntry.id)).all())


def test_approvals_follow_risk_and_role_and_every_step_is_audited(change_env, capsys):
    name, store = change_env
    code, created, _ = change(capsys, "create", "--user", "alice", "--title", "Raise risk limits", "--risk", "high",
                              "--description", "max_position 100 -> 150", "--rollback", "restore params.yaml")
    assert code == 0
    number = created["number"]
    assert number.startswith("CR-") and number.endswith("-001") and len(number) == len("CR-2026-001")
    assert (created["status"], created["submitted_by"], created["required"], created["missing"]) == (
        "submitted", "alice", ["technical", "business", "security"], ["technical", "business", "security"])

    # the submitter may not approve; a role without the kind's permission may not either (exit 3)
    code, _, err = change(capsys, "approve", number, "--as", "technical", "--user", "alice")
    assert code == 3 and "lacks permission git.merge" in err
    code, _, err = change(capsys, "approve", number, "--as", "business", "--user", "carol")
    assert code == 3 and "lacks permission experiment.start" in err
    code, approved, _ = change(capsys, "approve", number, "--as", "business", "--user", "bob", "--note", "ok")
    assert code == 0 and approved["missing"] == ["technical", "security"] and approved["status"] == "submitted"
    code, _, err = change(capsys, "approve", number, "--as", "technical", "--user", "bob")  # one approval per user
    assert code == 3 and "gave" in err and "business approval already" in err
    code, _, err = change(capsys, "approve", number, "--as", "business", "--user", "admin")  # given already: usage
    assert code == 2 and "has its business approval already" in err
    code, approved, _ = change(capsys, "approve", number, "--as", "technical", "--user", "admin")
    assert code == 0 and approved["missing"] == ["security"]
    code, approved, _ = change(capsys, "approve", number, "--as", "security", "--user", "carol")
    assert code == 0 and approved["status"] == "approved" and approved["missing"] == []
    code, _, err = change(capsys, "approve", number, "--as", "security", "--user", "svc-prefect")
    assert code == 2 and "is approved: it takes no more approvals" in err

    # the records: three approvals, each with its role and audit entry, the request's links list them all
    with session_for(store) as session:
        row = session.exec(select(ChangeRequest).where(ChangeRequest.environment == name)).one()
        approvals = session.exec(select(ChangeApproval).where(ChangeApproval.change_request_id == row.id)).all()
    assert sorted((a.kind, a.approved_by, a.role) for a in approvals) == [
        ("business", "bob", "senior_trader"), ("security", "carol", "compliance_officer"),
        ("technical", "admin", "system_administrator")]
    approve_entries = [e for e in entries(store, "change_approve") if e.success]
    assert {a.audit_entry_id for a in approvals} == {e.id for e in approve_entries}
    created_entry = entries(store, "change_create")[0]
    assert json.loads(row.links_json)["audit_entries"] == [created_entry.id, *sorted(a.audit_entry_id for a in approvals)]
    assert json.loads(created_entry.details)["required_approvals"] == ["technical", "business", "security"]
    denials = [json.loads(e.details) for e in entries(store, "change_approve") if not e.success]
    assert [(d["kind"], d["exit_code"]) for d in denials] == [("technical", 3), ("business", 3), ("technical", 3)]
    assert all(d["change_request"] == number for d in denials)

    # show and list: any role; a user without one is denied
    code, shown, _ = change(capsys, "show", number, "--user", "carol")
    assert code == 0 and shown["description"] == "max_position 100 -> 150" and len(shown["approvals"]) == 3
    code, listed, _ = change(capsys, "list", "--user", "alice", "--status", "approved")
    assert code == 0 and [c["number"] for c in listed] == [number]


def test_low_risk_needs_one_technical_approval_and_numbers_count_up(change_env, capsys):
    name, store = change_env
    numbers = []
    for title in ("first", "second"):
        code, created, _ = change(capsys, "create", "--user", "bob", "--title", title, "--risk", "low")
        assert code == 0
        numbers.append(created["number"])
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [1, 2]
    code, _, err = change(capsys, "approve", numbers[0], "--as", "business", "--user", "admin")
    assert code == 2 and "low risk: it needs technical approval, not business" in err
    code, approved, _ = change(capsys, "approve", numbers[0], "--as", "technical", "--user", "admin")
    assert code == 0 and approved["status"] == "approved"
    code, _, err = change(capsys, "implement", numbers[1], "--user", "admin")
    assert code == 2 and "is submitted (missing: technical approval)" in err
    code, _, err = change(capsys, "implement", numbers[0], "--user", "alice")
    assert code == 3 and "lacks permission git.merge" in err
    code, done, _ = change(capsys, "implement", numbers[0], "--user", "bob", "--note", "merged deps branch")
    assert code == 0 and (done["status"], done["implemented_by"], done["links"]["note"]) == (
        "implemented", "bob", "merged deps branch")
    implemented = entries(store, "change_implemented")[-1]
    assert implemented.success and implemented.id in done["links"]["audit_entries"]


def test_refusals_and_usage_errors(change_env, capsys):
    name, store = change_env
    code, _, err = change(capsys, "create", "--user", "carol", "--title", "x", "--risk", "low")
    assert code == 3 and "lacks permission git.commit" in err
    assert json.loads(entries(store, "change_create")[-1].details)["exit_code"] == 3
    code, _, err = change(capsys, "show", "CR-2026-999", "--user", "bob")
    assert code == 2 and "no change request 'CR-2026-999'" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["change", "create", "--title", "x", "--risk", "enormous"])
    assert exit_info.value.code == 2
    code, _, err = change(capsys, "create", "--user", "bob", "--title", " ", "--risk", "low")
    assert code == 2 and "needs a title" in err


@pytest.mark.parametrize("kind", sorted(APPROVAL_PERMISSIONS))
def test_who_may_give_each_approval(kind):
    """The table the docs state: which roles of runbook 000 may give each kind."""
    expected = {"technical": {"senior_trader", "system_administrator"},
                "business": {"senior_trader", "system_administrator"},
                "security": {"compliance_officer", "system_administrator"}}[kind]
    assert {name for name, role in ROLES.items() if role.allows(APPROVAL_PERMISSIONS[kind])} == expected
    assert REQUIRED_APPROVALS["low"] == ("technical",)
