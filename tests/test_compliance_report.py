"""compliance-report: SOX 404 counts equal counts taken independently from the raw rows; FINRA
15c3-5 names capital breaches and promotions against the evidence, with their flow runs; files are
written and copied offsite; a tampered audit trail fails the report."""

from __future__ import annotations

import csv
import json
import sqlite3
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tasks.compliance.period import parse_period
from tasks.experiments.lifecycle import Capital, conclude_experiment, create_experiment, record_evaluation, \
    start_experiment
from tradeops.cli import apply_file
from tradeops.errors import UsageError
from tradeops.store.engine import upgrade
from tradeops.store.records import append_audit


def test_periods():
    today = datetime(2026, 11, 23).date()
    assert parse_period("previous-month", today).label == "2026-10"
    assert parse_period("previous-quarter", today).label == "2026-Q3"
    assert parse_period("previous-quarter", datetime(2026, 2, 1).date()).label == "2025-Q4"
    q = parse_period("2026-Q4")
    assert (q.start, q.end) == (datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    assert parse_period("2026-12").end == datetime(2027, 1, 1, tzinfo=timezone.utc)
    for bad in ("2026-13", "last month", "2026-Q5"):
        with pytest.raises(UsageError, match="period"):
            parse_period(bad)


@pytest.fixture
def compliance_env(tmp_path):
    name, db = f"cr-{uuid.uuid4().hex[:6]}", tmp_path / "ops.db"
    store = f"sqlite:///{db}"
    (tmp_path / "tradeops.toml").write_text(
        f'[environment]\nname = "{name}"\ndata_dir = "ops"\n[ops_store]\nurl = "{store}"\n'
        f'[offsite]\nurl = "file://{tmp_path / "offsite"}"\n'
        '[access]\nuser = "carol"\n'
        'users = { alice = "strategy_developer", bob = "senior_trader", carol = "compliance_officer" }\n')
    apply_file(tmp_path / "tradeops.toml", quiet=True)
    upgrade(store)
    return name, store, db, tmp_path


def seed(name: str, store: str) -> dict:
    """Audit entries and experiments of this month, as the flows and the CLI would write them."""
    for user, operation, success in [("alice", "experiment_create", True), ("alice", "experiment_start", False),
                                     ("bob", "experiment_start", True), ("bob", "strategy_approve", True),
                                     ("bob", "strategy_promote", True), ("svc", "db_maintenance", False),
                                     ("svc", "backup_restore", True)]:
        append_audit(store, operation, user, success=success, strategy_name="momentum_alpha"
                     if operation.startswith("strategy") else None, version="v1.2.0"
                     if operation.startswith("strategy") else None)
    ok = create_experiment(store, name, "ok", "alpha", {"x": 1}, "50/50", Capital(None, 3.0), 28, "alice")
    big = create_experiment(store, name, "too-big", "beta", {"x": 1}, "50/50", Capital(None, 12.0), 28, "bob")
    eager = create_experiment(store, name, "eager", "gamma", {"x": 1}, "50/50", Capital(None, 2.0), 28, "bob")
    blind = create_experiment(store, name, "blind", "delta", {"x": 1}, "50/50", Capital(None, 2.0), 28, "bob")
    for row in (ok, big, eager, blind):
        start_experiment(store, row, "bob")
    evaluation = record_evaluation(store, eager.id, {"n_control": 150, "n_variant": 150, "p_value": 0.3, "lift": 0.02},
                                   "extend", "no rule fired yet", [], None)
    conclude_experiment(store, eager, "promote", "bob", "looks good")
    conclude_experiment(store, blind, "promote", "bob")
    return {"evaluation": evaluation}


def independent_counts(db: Path, period) -> tuple[Counter, Counter, Counter, Counter]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT operation, user, success, timestamp FROM audit_entry").fetchall()
    conn.close()
    inside = [r for r in rows if period.start <= datetime.fromisoformat(r[3]).replace(tzinfo=timezone.utc) < period.end]
    return (Counter(r[0] for r in inside), Counter(r[1] for r in inside),
            Counter(r[0] for r in inside if not r[2]), Counter(r[1] for r in inside if not r[2]))


def run_report(name: str, period: str):
    from flows.compliance_report import compliance_report

    state = compliance_report(environment=name, period=period, return_state=True)
    return state, state.result(raise_on_failure=False)


def test_sox_and_finra_for_a_month(compliance_env):
    name, store, db, tmp_path = compliance_env
    seed(name, store)
    label = datetime.now(timezone.utc).strftime("%Y-%m")
    by_operation, by_user, failed_op, failed_user = independent_counts(db, parse_period(label))
    state, result = run_report(name, label)
    assert state.is_failed()  # the planted violations
    conn = sqlite3.connect(db)
    last = conn.execute("SELECT operation, user, success FROM audit_entry ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    assert last == ("compliance_report", "carol", 0)  # the report itself is on record, as carol ran it

    sox = json.loads(Path(next(f for f in result["files"] if f.endswith("sox-404.json"))).read_text())
    assert {r["name"]: r["count"] for r in sox["by_operation"]} == dict(by_operation)
    assert {r["name"]: r["count"] for r in sox["by_user"]} == dict(by_user)
    assert {r["name"]: r["failed"] for r in sox["by_operation"] if r["failed"]} == dict(failed_op)
    assert {r["name"]: r["failed"] for r in sox["by_user"] if r["failed"]} == dict(failed_user)
    assert sox["total"] == sum(by_operation.values()) and sox["failed"] == sum(failed_op.values())
    assert [(a["user"], a["strategy"], a["version"]) for a in sox["approvals"]] == [("bob", "momentum_alpha", "v1.2.0")]
    assert {(s["strategy"], s["operation"]) for s in sox["strategies_modified"]} == {("momentum_alpha", "strategy_promote")}

    finra = json.loads(Path(next(f for f in result["files"] if f.endswith("finra-15c3-5.json"))).read_text())
    assert {e["experiment"]: e["compliant"] for e in finra["experiments"]} == \
        {"ok": True, "too-big": False, "eager": True, "blind": True}
    kinds = {(v["experiment"], v["kind"]) for v in finra["violations"]}
    assert kinds == {("too-big", "capital limit"), ("eager", "promoted despite the evaluation"),
                     ("blind", "no statistical validation")}
    too_big = [v for v in finra["violations"] if v["experiment"] == "too-big"]
    assert any("12% of total capital exceeds the 10% limit" in v["finding"] for v in too_big)
    assert any("6% of total capital exceeds the 5% limit" in v["finding"] for v in too_big)  # one arm: 12% x 50%
    assert "too-big" in state.message and "eager" in state.message and "blind" in state.message

    with open(next(f for f in result["files"] if f.endswith("finra-15c3-5-violations.csv"))) as handle:
        assert len(list(csv.DictReader(handle))) == len(finra["violations"])
    offsite = tmp_path / "offsite" / "compliance" / name / label
    assert sorted(p.name for p in offsite.iterdir()) == sorted(Path(f).name for f in result["files"])
    assert result["sox"]["chain"]["intact"] is True


def test_a_tampered_audit_trail_fails_the_report(compliance_env):
    name, store, db, _ = compliance_env
    seed(name, store)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit_entry SET user = 'mallory' WHERE operation = 'strategy_approve'")
    conn.commit()
    conn.close()
    state, result = run_report(name, datetime.now(timezone.utc).strftime("%Y-%m"))
    assert state.is_failed() and "audit chain broken" in state.message
    assert result["sox"]["chain"]["intact"] is False
