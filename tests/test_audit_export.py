"""audit-export (issue 7): the chain head and the day's entries go offsite under S3 Object Lock
(compliance mode, 7 years) on a real S3 server; a chain rewritten in the database with every hash
recomputed still walks clean, and only the exported heads give it away: `audit verify` names the
first entry changed or deleted after its export, and the next export refuses to launder it."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from tradeops.cli.commands import audit as audit_cli
from tradeops.cli.main import build_parser
from tradeops.cli.common import apply_file
from tradeops.store import AuditEntry, open_store
from tradeops.store.canonical import ROW_COLUMNS
from tradeops.store.engine import sqlalchemy_url, upgrade
from tradeops.store.identity import os_login
from tradeops.store.records import GENESIS_HASH, append_audit, canonical_audit_content

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


def _environment(tmp_path: Path, offsite: str, endpoint: str | None = None, store: str | None = None) -> SimpleNamespace:
    name, store = f"ae-{uuid.uuid4().hex[:6]}", store or f"sqlite:///{tmp_path / 'ops.db'}"
    endpoint_line = f'endpoint_url = "{endpoint}"\n' if endpoint else ""
    (tmp_path / "tradeops.toml").write_text(
        f'[environment]\nname = "{name}"\ndata_dir = "ops"\n[ops_store]\nurl = "{store}"\n'
        f'[offsite]\nurl = "{offsite}"\n{endpoint_line}'
        '[access]\nuser = "svc-prefect"\nusers = { svc-prefect = "system_administrator" }\n'
        f'logins = {{ {json.dumps(os_login())} = "svc-prefect" }}\n')
    apply_file(tmp_path / "tradeops.toml", quiet=True)
    upgrade(store)
    for n in range(1, 6):
        append_audit(store, "strategy_version", "alice", strategy_name="momentum_alpha", version=f"v1.{n}.0",
                     details={"n": n, "note": "é \"quoted\""}, changed_files=[f"strategies/s{n}.py"])
    return SimpleNamespace(name=name, store=store, config=tmp_path / "tradeops.toml", folder=tmp_path)


@pytest.fixture
def locked_env(tmp_path, s3_endpoint):
    bucket = f"tradeops-audit-{uuid.uuid4().hex[:6]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    env = _environment(tmp_path, f"s3://{bucket}/ops", s3_endpoint)
    env.s3, env.bucket = s3, bucket
    return env


@pytest.fixture
def folder_env(tmp_path):
    return _environment(tmp_path, f"file://{tmp_path / 'offsite'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_env(request, tmp_path):
    store = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    return _environment(tmp_path, f"file://{tmp_path / 'offsite'}", store=store)


def run_export(name: str):
    from flows.audit_export import audit_export

    state = audit_export(environment=name, return_state=True)
    return state, state.result(raise_on_failure=False)


def store_rows(url: str) -> list[dict]:
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM audit_entry ORDER BY id"))]
    engine.dispose()
    return rows


def rewrite_chain_from(url: str, entry_id: int, **changes) -> None:
    """What an intruder with write access and the source code can do: change an entry and recompute
    every hash after it, so the chain in the database walks clean again."""
    with Session(open_store(url)) as session:
        previous = GENESIS_HASH
        for entry in session.exec(select(AuditEntry).order_by(AuditEntry.id)):
            if entry.id == entry_id:
                for column, value in changes.items():
                    setattr(entry, column, value)
            if entry.id >= entry_id:
                entry.prev_hash = previous
                entry.entry_hash = hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest()
                session.add(entry)
            previous = entry.entry_hash
        session.commit()


def sql(url: str, statement: str) -> None:
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def verify(config: Path, *extra: str, command: str = "verify") -> tuple[int, dict]:
    parser = build_parser(only="audit")
    args = parser.parse_args(["audit", command, "--config", str(config), "--json", *extra])
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = audit_cli.run(args)
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


def test_the_head_and_entries_go_offsite_under_object_lock_for_seven_years(locked_env):
    before = len(store_rows(locked_env.store))  # `tradeops apply`'s own entry and the five strategy versions
    state, result = run_export(locked_env.name)
    assert state.is_completed(), state.message
    head, offsite = result["export"], result["offsite"]
    rows = store_rows(locked_env.store)
    exported = rows[: head["last_id"]]
    assert head["entries"] == len(exported) == before == 6 and head["first_id"] == 1
    assert head["head_hash"] == exported[-1]["entry_hash"] and head["link"] == GENESIS_HASH
    assert offsite["object_lock"] is True and len(offsite["keys"]) == 2
    entries_key, head_key = offsite["keys"]
    assert entries_key.endswith(f"entries-{1:012d}-{6:012d}.jsonl")
    assert head_key.endswith(f"head-{6:012d}-{head['head_hash']}.json")

    now = datetime.now(timezone.utc)
    for key in offsite["keys"]:
        answer = locked_env.s3.head_object(Bucket=locked_env.bucket, Key=f"ops/{key}")
        assert answer["ObjectLockMode"] == "COMPLIANCE"
        assert 7 * 365 - 1 <= (answer["ObjectLockRetainUntilDate"] - now).days <= 7 * 365
    body = locked_env.s3.get_object(Bucket=locked_env.bucket, Key=f"ops/{entries_key}")["Body"].read().decode()
    lines = [json.loads(line) for line in body.splitlines()]
    assert [line["entry_hash"] for line in lines] == [r["entry_hash"] for r in exported]
    assert list(lines[0]) == list(ROW_COLUMNS) and lines[2]["details"] == exported[2]["details"]
    stored_head = json.loads(locked_env.s3.get_object(Bucket=locked_env.bucket, Key=f"ops/{head_key}")["Body"].read())
    assert stored_head["entries_sha256"] == hashlib.sha256(body.encode()).hexdigest()

    # the export itself is audited; the next one carries exactly what came after, linked to this head
    assert rows[-1]["operation"] == "audit_export" and rows[-1]["success"]
    append_audit(locked_env.store, "strategy_promote", "bob", strategy_name="momentum_alpha", version="v1.5.0")
    state, second = run_export(locked_env.name)
    assert state.is_completed(), state.message
    assert second["export"]["first_id"] == 7 and second["export"]["entries"] == 2
    assert second["export"]["link"] == head["head_hash"]
    assert second["exports_check"]["heads_checked"] == 1

    code, report = verify(locked_env.config)
    assert code == 0 and report["intact"] and report["exports"]["heads_checked"] == 2


def test_a_rewritten_chain_walks_clean_but_differs_from_its_export(locked_env):
    assert run_export(locked_env.name)[0].is_completed()
    rewrite_chain_from(locked_env.store, 3, details='{"n": 2, "note": "nothing to see"}')

    code, report = verify(locked_env.config, "--no-exports")
    assert code == 0 and report["intact"]  # the chain alone cannot tell

    code, report = verify(locked_env.config)
    assert code == 1 and report["intact"]
    mismatch = report["exports"]["mismatch"]
    assert mismatch["kind"] == "modified" and mismatch["entry_id"] == 3
    assert "details changed" in mismatch["message"] and mismatch["export_key"].endswith(".jsonl")

    state, result = run_export(locked_env.name)  # the rewrite is never laundered into a new export
    assert state.is_failed() and "nothing exported" in state.message and "entry id 3" in state.message
    assert result["offsite"] is None
    last = store_rows(locked_env.store)[-1]
    assert last["operation"] == "audit_export" and not last["success"]


def test_entries_deleted_after_their_export_are_named(folder_env):
    assert run_export(folder_env.name)[0].is_completed()
    from blocks import OffsiteStorage

    sql(folder_env.store, "DELETE FROM audit_entry WHERE id >= 4")  # the tail, so the chain still walks
    storage = OffsiteStorage(url=f"file://{folder_env.folder / 'offsite'}")
    check = audit_cli.compare_with_exports(folder_env.store, storage, folder_env.name)
    assert (check.mismatch["kind"], check.mismatch["entry_id"]) == ("deleted", 4), check.mismatch
    assert "missing from the ops store" in check.summary()


def test_a_folder_offsite_works_without_object_lock_and_says_so(folder_env):
    state, result = run_export(folder_env.name)
    assert state.is_completed(), state.message
    assert result["offsite"]["object_lock"] is False
    keys = result["offsite"]["keys"]
    assert all((folder_env.folder / "offsite" / key).is_file() for key in keys)
    state, again = run_export(folder_env.name)  # only the first run's own audit entry is new
    assert state.is_completed() and again["export"]["entries"] == 1


def test_a_chain_broken_in_the_store_is_not_exported(folder_env):
    sql(folder_env.store, "UPDATE audit_entry SET \"user\" = 'mallory' WHERE id = 2")
    state, result = run_export(folder_env.name)
    assert state.is_failed() and "entry id 2" in state.message and result["offsite"] is None
    assert not (folder_env.folder / "offsite").exists() or not list((folder_env.folder / "offsite").rglob("head-*"))


def test_without_offsite_storage_the_export_fails_saying_why(tmp_path):
    name, store = f"ae-{uuid.uuid4().hex[:6]}", f"sqlite:///{tmp_path / 'ops.db'}"
    (tmp_path / "tradeops.toml").write_text(
        f'[environment]\nname = "{name}"\ndata_dir = "ops"\n[ops_store]\nurl = "{store}"\n')
    apply_file(tmp_path / "tradeops.toml", quiet=True)
    state, _ = run_export(name)
    assert state.is_failed() and "no offsite storage" in state.message


def test_an_auditor_sees_what_is_exported_entry_by_entry(any_store_env):
    """`audit verify` names the exported head and counts what came after it; `audit show` says of
    one entry whether it is exported and still matches its copy; `audit list` finds the export's
    own entry by its flow run."""
    env = any_store_env
    state, result = run_export(env.name)
    assert state.is_completed(), state.message
    head = result["export"]
    append_audit(env.store, "strategy_promote", "bob", strategy_name="momentum_alpha", version="v1.5.0")
    code, report = verify(env.config)
    exports = report["exports"]
    assert code == 0 and (exports["latest"]["last_id"], exports["latest"]["head_hash"]) == (6, head["head_hash"])
    assert exports["unexported"] == 2  # the export's own entry and the promotion
    assert store_rows(env.store)[-1]["operation"] == "strategy_promote"  # verify appended nothing

    code, shown = verify(env.config, "3", command="show")
    assert code == 0 and shown["verified"] and shown["exported"] is True
    assert shown["export"]["copy_matches"] and shown["export"]["head_matches"]
    assert shown["export"]["entries_key"] == head["entries_key"] and shown["predecessor"]["id"] == 2
    code, shown = verify(env.config, "8", command="show")
    assert code == 0 and shown["verified"] and shown["exported"] is False and shown["newest_exported_id"] == 6

    code, listed = verify(env.config, "--operation", "audit_export", command="list")
    [export_entry] = listed
    assert export_entry["flow_run_id"] == str(state.state_details.flow_run_id)
    assert export_entry["flow_run_link"].endswith(export_entry["flow_run_id"])
    code, same_run = verify(env.config, "--flow-run", export_entry["flow_run_id"], command="list")
    assert [e["id"] for e in same_run] == [export_entry["id"]]

    rewrite_chain_from(env.store, 3, details='{"n": 3, "note": "rewritten"}')  # every hash recomputed after it
    code, shown = verify(env.config, "3", command="show")
    assert code == 1 and shown["hash_holds"] and shown["links_to_predecessor"]  # the chain alone cannot tell
    assert shown["export"]["copy_matches"] is False and not shown["export"]["head_matches"] and not shown["verified"]
