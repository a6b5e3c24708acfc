"""compliance-report: SOX 404 counts equal counts taken independently from the raw rows, and each
expands to its entries; FINRA 15c3-5 names capital breaches and promotions against the evidence,
with their flow runs; the files are evidence (provenance in each, never replaced, a manifest whose
hash is in the audit trail, all offsite under Object Lock); a tampered audit trail fails the report.
On SQLite and PostgreSQL ops stores."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tasks.compliance.period import parse_period
from tasks.experiments.lifecycle import Capital, conclude_experiment, create_experiment, record_evaluation, \
    start_experiment
from tradeops.cli.common import apply_file
from tradeops.errors import UsageError
from tradeops.store.engine import sqlalchemy_url, upgrade
from tradeops.store.records import append_audit

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


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


@pytest.fixture(params=["sqlite", "postgresql"])
def compliance_env(request, tmp_path):
    name = f"cr-{uuid.uuid4().hex[:6]}"
    store = request.getfixturevalue("pg_database") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'ops.db'}"
    (tmp_path / "tradeops.toml").write_text(
        f'[environment]\nname = "{name}"\ndata_dir = "ops"\n[ops_store]\nurl = "{store}"\n'
        f'[offsite]\nurl = "file://{tmp_path / "offsite"}"\n'
        '[access]\nuser = "carol"\n'
        'users = { alice = "strategy_developer", bob = "senior_trader", carol = "compliance_officer" }\n')
    apply_file(tmp_path / "tradeops.toml", quiet=True)
    upgrade(store)
    return name, store, tmp_path


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


def store_sql(store: str, statement: str, **params) -> list:
    """Plain SQL on the ops store, no tradeops code: the independent side of each comparison."""
    engine = create_engine(sqlalchemy_url(store))
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
    engine.dispose()
    return rows


def _utc(value) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def independent_counts(store: str, period, through_id: int) -> tuple[Counter, Counter, Counter, Counter, list]:
    rows = store_sql(store, 'SELECT operation, "user", success, "timestamp", id FROM audit_entry WHERE id <= :h',
                     h=through_id)
    inside = [r for r in rows if period.start <= _utc(r[3]) < period.end]
    return (Counter(r[0] for r in inside), Counter(r[1] for r in inside),
            Counter(r[0] for r in inside if not r[2]), Counter(r[1] for r in inside if not r[2]),
            sorted(r[4] for r in inside))


def run_report(name: str, period: str):
    from flows.compliance_report import compliance_report

    state = compliance_report(environment=name, period=period, return_state=True)
    return state, state.result(raise_on_failure=False)


def report_file(result, stem: str, extension: str) -> Path:
    run_id = result["evidence"]["flow_run_id"]
    [path] = [Path(f) for f in result["files"] if Path(f).name == f"{stem}-{run_id}.{extension}"]
    return path


def read_csv(path: Path) -> tuple[dict, list[dict]]:
    """A report CSV: its `# label: text` preamble, then the table."""
    with open(path, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    preamble = dict(line[2:].rstrip("\n").split(": ", 1) for line in itertools.takewhile(
        lambda line: line.startswith("#"), lines))
    table = list(csv.DictReader(itertools.dropwhile(lambda line: line.startswith("#"), lines)))
    return preamble, table


def test_sox_and_finra_for_a_month(compliance_env):
    name, store, tmp_path = compliance_env
    seed(name, store)
    label = datetime.now(timezone.utc).strftime("%Y-%m")
    head_id, head_hash = store_sql(store, "SELECT id, entry_hash FROM audit_entry ORDER BY id DESC LIMIT 1")[0]
    by_operation, by_user, failed_op, failed_user, entry_ids = independent_counts(store, parse_period(label), head_id)
    state, result = run_report(name, label)
    assert state.is_failed()  # the planted violations
    last = store_sql(store, 'SELECT operation, "user", success, details FROM audit_entry ORDER BY id DESC LIMIT 1')[0]
    assert last[:3] == ("compliance_report", "carol", False)  # the report itself is on record, as carol ran it

    sox = json.loads(report_file(result, "sox-404", "json").read_text())
    assert {r["name"]: r["count"] for r in sox["by_operation"]} == dict(by_operation)
    assert {r["name"]: r["count"] for r in sox["by_user"]} == dict(by_user)
    assert {r["name"]: r["failed"] for r in sox["by_operation"] if r["failed"]} == dict(failed_op)
    assert {r["name"]: r["failed"] for r in sox["by_user"] if r["failed"]} == dict(failed_user)
    assert sox["total"] == sum(by_operation.values()) and sox["failed"] == sum(failed_op.values())
    assert [(a["user"], a["strategy"], a["version"]) for a in sox["approvals"]] == [("bob", "momentum_alpha", "v1.2.0")]
    assert {(s["strategy"], s["operation"]) for s in sox["strategies_modified"]} == {("momentum_alpha", "strategy_promote")}

    # every count expands to its entries in the detail file, each linked to its flow run
    _, entries = read_csv(report_file(result, "sox-404-entries", "csv"))
    assert [int(e["id"]) for e in entries] == entry_ids
    for row in sox["by_operation"]:
        assert sum(e["operation"] == row["name"] for e in entries) == row["count"]
        assert sum(e["operation"] == row["name"] and e["success"] == "False" for e in entries) == row["failed"]
    for row in sox["by_user"]:
        assert sum(e["user"] == row["name"] for e in entries) == row["count"]
    assert all(e["flow_run_link"].endswith(e["flow_run_id"]) for e in entries if e["flow_run_id"])
    stored_hashes = dict(store_sql(store, "SELECT id, entry_hash FROM audit_entry"))
    assert all(stored_hashes[int(e["id"])] == e["entry_hash"] for e in entries)

    finra = json.loads(report_file(result, "finra-15c3-5", "json").read_text())
    assert {e["experiment"]: e["compliant"] for e in finra["experiments"]} == \
        {"ok": True, "too-big": False, "eager": True, "blind": True}
    kinds = {(v["experiment"], v["kind"]) for v in finra["violations"]}
    assert kinds == {("too-big", "capital limit"), ("eager", "promoted despite the evaluation"),
                     ("blind", "no statistical validation")}
    too_big = [v for v in finra["violations"] if v["experiment"] == "too-big"]
    assert any("12% of total capital exceeds the 10% limit" in v["finding"] for v in too_big)
    assert any("6% of total capital exceeds the 5% limit" in v["finding"] for v in too_big)  # one arm: 12% x 50%
    assert "too-big" in state.message and "eager" in state.message and "blind" in state.message
    _, evaluations = read_csv(report_file(result, "finra-15c3-5-evaluations", "csv"))
    for experiment in finra["experiments"]:
        assert sum(int(e["experiment_id"]) == experiment["id"] for e in evaluations) == experiment["evaluations"]

    _, violations = read_csv(report_file(result, "finra-15c3-5-violations", "csv"))
    assert len(violations) == len(finra["violations"])
    offsite = tmp_path / "offsite" / "compliance" / name / label
    assert sorted(p.name for p in offsite.iterdir()) == sorted(Path(f).name for f in result["files"])
    assert report_file(result, "compliance-report", "md").name in {p.name for p in offsite.iterdir()}
    assert result["sox"]["chain"]["intact"] is True

    # every file states what it is evidence of: this month is not over, so it is partial
    run_id = str(state.state_details.flow_run_id)
    for path in map(Path, result["files"]):
        if path.suffix == ".json":
            evidence = json.loads(path.read_text())["evidence"]
            assert (evidence["period"], evidence["status"], evidence["requested_by"], evidence["flow_run_id"]) == \
                (label, "partial", "carol", run_id)
            assert evidence["chain_head"] == {"id": head_id, "entry_hash": head_hash}
            assert abs(datetime.fromisoformat(evidence["generated_at"]) - datetime.now(timezone.utc)).seconds < 300
        elif path.suffix == ".csv":
            preamble, _ = read_csv(path)
            assert preamble["period"].startswith(label) and preamble["status"].startswith("PARTIAL")
            assert preamble["requested by"] == "carol" and preamble["flow run"].startswith(run_id)
            assert preamble["audit chain head"] == f"entry id {head_id}, hash {head_hash}"
        else:
            text_ = path.read_text()
            assert "PARTIAL" in text_ and run_id in text_ and head_hash in text_ and "carol" in text_
    # the manifest hashes every other file; its own hash is in the report's audit entry
    manifest_path = report_file(result, "manifest", "json")
    manifest = json.loads(manifest_path.read_text())
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == \
        {Path(f).name: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in result["files"] if Path(f) != manifest_path}
    details = json.loads(last[3])
    assert details["manifest_sha256"] == hashlib.sha256(manifest_path.read_bytes()).hexdigest() == \
        result["manifest_sha256"]
    assert details["status"] == "partial" and details["chain_head"]["id"] == head_id


def test_a_rerun_never_replaces_an_earlier_report_and_a_past_period_is_complete(compliance_env):
    name, store, tmp_path = compliance_env
    seed(name, store)
    label = datetime.now(timezone.utc).strftime("%Y-%m")
    _, first = run_report(name, label)
    before = {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in first["files"]}
    _, second = run_report(name, label)
    assert not set(first["files"]) & set(second["files"])
    assert {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in first["files"]} == before
    offsite = tmp_path / "offsite" / "compliance" / name / label
    assert {p.name for p in offsite.iterdir()} == {Path(f).name for f in first["files"] + second["files"]}
    # the second run counted the first run's own entry: its head is newer
    assert second["evidence"]["chain_head"]["id"] > first["evidence"]["chain_head"]["id"]

    state, past = run_report(name, "2020-Q1")  # over long ago: complete, and empty
    assert state.is_completed(), state.message
    assert past["evidence"]["status"] == "complete" and past["sox"]["total"] == 0
    preamble, entries = read_csv(report_file(past, "sox-404-entries", "csv"))
    assert preamble["status"].startswith("complete") and entries == []


def test_reports_go_offsite_under_object_lock(tmp_path, s3_endpoint):
    """On S3 with Object Lock, every file of the run (markdown and manifest included) is locked
    in compliance mode for 7 years."""
    import boto3

    bucket, name = f"tradeops-cr-{uuid.uuid4().hex[:6]}", f"cr-{uuid.uuid4().hex[:6]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    (tmp_path / "tradeops.toml").write_text(
        f'[environment]\nname = "{name}"\ndata_dir = "ops"\n[ops_store]\nurl = "sqlite:///{tmp_path / "ops.db"}"\n'
        f'[offsite]\nurl = "s3://{bucket}/reports"\nendpoint_url = "{s3_endpoint}"\n'
        '[access]\nuser = "carol"\nusers = { carol = "compliance_officer" }\n')
    apply_file(tmp_path / "tradeops.toml", quiet=True)
    state, result = run_report(name, "2020-01")
    assert state.is_completed(), state.message
    assert result["offsite"]["object_lock"] is True
    assert sorted(Path(k).name for k in result["offsite"]["keys"]) == sorted(Path(f).name for f in result["files"])
    now = datetime.now(timezone.utc)
    for key in result["offsite"]["keys"]:
        answer = s3.head_object(Bucket=bucket, Key=f"reports/{key}")
        assert answer["ObjectLockMode"] == "COMPLIANCE"
        assert 7 * 365 - 1 <= (answer["ObjectLockRetainUntilDate"] - now).days <= 7 * 365


def test_a_tampered_audit_trail_fails_the_report(compliance_env):
    name, store, _ = compliance_env
    seed(name, store)
    store_sql(store, "UPDATE audit_entry SET \"user\" = 'mallory' WHERE operation = 'strategy_approve'")
    state, result = run_report(name, datetime.now(timezone.utc).strftime("%Y-%m"))
    assert state.is_failed() and "audit chain broken" in state.message
    assert result["sox"]["chain"]["intact"] is False
