"""Issue 7's audit trail: a clean chain verifies, and rows edited, deleted, inserted or reordered
with SQL straight in the ops store (SQLite and a real PostgreSQL) are caught, naming the entry;
8 concurrent writer processes never fork the chain.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, insert, text
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_writers import run_writers  # noqa: E402

from tasks.audit import verify_chain  # noqa: E402
from tradeops.store.canonical import canonical_from_row, iso_timestamp, row_of_entry, sealed_template_parts  # noqa: E402
from tradeops.cli.commands import audit as audit_cli  # noqa: E402
from tradeops.cli.main import build_parser  # noqa: E402
from tradeops.store import AuditEntry, open_store  # noqa: E402
from tradeops.store.engine import sqlalchemy_url  # noqa: E402
from tradeops.store.identity import os_login  # noqa: E402
from tradeops.store.records import GENESIS_HASH, append_audit, canonical_audit_content  # noqa: E402

DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_database")


def sql(url: str, statement: str, **params) -> None:
    """Tamper the way an intruder with database access would: plain SQL, no tradeops code."""
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def hashes(url: str) -> dict[int, str]:
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, entry_hash FROM audit_entry ORDER BY id")).all()
    engine.dispose()
    return dict(rows)


def forged(prev_hash: str, moment: datetime, **fields) -> dict:
    """A row whose own hash is computed correctly (by canonical_audit_content itself)."""
    values = dict(timestamp=moment, operation="config_apply", user="mallory", strategy_name=None, version=None,
                  repository_hash=None, execution_time_ms=None, success=True, changed_files="[]",
                  compliance_flags="{}", details='{"forged": true}', flow_run_id=None, prev_hash=prev_hash)
    values.update(fields)
    values["entry_hash"] = hashlib.sha256(canonical_audit_content(SimpleNamespace(**values)).encode()).hexdigest()
    return values


def insert_rows(url: str, rows: list[dict]) -> None:
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(insert(AuditEntry.__table__), rows)
    engine.dispose()


def chain_at(url: str, moments: list[datetime]) -> list[dict]:
    """A valid chain with chosen timestamps (append_audit stamps 'now'), written in id order."""
    open_store(url)
    rows, previous = [], GENESIS_HASH
    for n, moment in enumerate(moments, start=1):
        row = forged(previous, moment, id=n, user=f"user{n}", operation=f"op{n}", details=json.dumps({"n": n}))
        rows.append(row)
        previous = row["entry_hash"]
    insert_rows(url, rows)
    return rows


@pytest.fixture
def six(store_url):
    """Six entries appended the ordinary way: ids 1..6."""
    entries = [append_audit(store_url, "config_apply", f"user{n}", details={"n": n, "text": "é\n\"q\"\\"},
                            changed_files=[f"f{n}.py"]) for n in range(1, 7)]
    assert [e.id for e in entries] == [1, 2, 3, 4, 5, 6]
    return entries


# -- the fast canonical form is the canonical form -----------------------------------------------

_row_of = row_of_entry


def _odd_text(rng: random.Random) -> str:
    alphabet = ['"', "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "—", "€", "\u2028", "😀", "a", " ", "{", "}"]
    return "".join(rng.choice(alphabet) if rng.random() < 0.5 else chr(rng.randint(32, 0x2FFF))
                   for _ in range(rng.randint(0, 40)))


def test_canonical_from_row_builds_exactly_canonical_audit_content():
    rng = random.Random(7)
    cases = []
    for n in range(3000):
        maybe = lambda: None if rng.random() < 0.3 else _odd_text(rng)  # noqa: E731
        cases.append(AuditEntry(
            id=n, timestamp=DAY + timedelta(microseconds=rng.randint(0, 10**12)) if n % 2 else DAY,
            operation=_odd_text(rng), user=_odd_text(rng), strategy_name=maybe(), version=maybe(),
            repository_hash=maybe(), execution_time_ms=rng.choice([None, 0, -1, 7, 2**40]),
            success=rng.random() < 0.5, changed_files=json.dumps([_odd_text(rng)]),
            compliance_flags=json.dumps({"sox": _odd_text(rng)}), details=_odd_text(rng), flow_run_id=maybe(),
            prev_hash=_odd_text(rng), entry_hash="x"))
    for entry in cases:
        assert canonical_from_row(_row_of(entry)) == canonical_audit_content(entry), entry


def test_sealed_template_parts_join_to_canonical_from_row():
    """What PostgreSQL appends hash: the parts joined around prev_hash and timestamp, no JSON of its own."""
    rng = random.Random(8)
    for n in range(3000):
        maybe = lambda: None if rng.random() < 0.3 else _odd_text(rng)  # noqa: E731
        values = dict(operation=_odd_text(rng), user=_odd_text(rng), strategy_name=maybe(), version=maybe(),
                      repository_hash=maybe(), execution_time_ms=rng.choice([None, 0, -1, 7, 2**40]),
                      success=rng.random() < 0.5, changed_files=json.dumps([_odd_text(rng)]),
                      compliance_flags=json.dumps({"sox": _odd_text(rng)}), details=_odd_text(rng),
                      flow_run_id=maybe())
        prev_hash = hashlib.sha256(str(n).encode()).hexdigest()
        moment = iso_timestamp(DAY + timedelta(microseconds=rng.randint(0, 10**12)))
        row = (n, moment, *(values[c] for c in ("operation", "user", "strategy_name", "version", "repository_hash",
               "execution_time_ms", "success", "changed_files", "compliance_flags", "details", "flow_run_id")),
               prev_hash)
        before_prev_hash, before_timestamp, after_timestamp = sealed_template_parts(values)
        joined = before_prev_hash + prev_hash + before_timestamp + moment + after_timestamp
        assert joined == canonical_from_row(row), values
        assert joined.isascii()


# -- a clean chain, and each kind of tampering ---------------------------------------------------

def test_a_clean_chain_verifies(store_url, six):
    report = verify_chain(store_url)
    assert report.intact and report.first_break is None
    assert (report.entries_checked, report.first_id, report.last_id) == (6, 1, 6)
    assert report.head_hash == six[-1].entry_hash
    assert "intact: 6 entries" in report.summary()


def test_an_empty_store_verifies(store_url):
    open_store(store_url)
    report = verify_chain(store_url)
    assert report.intact and report.entries_checked == 0


def test_an_edited_row_is_modified_naming_it(store_url, six):
    sql(store_url, "UPDATE audit_entry SET details = :d WHERE id = 3", d='{"n": 999}')
    report = verify_chain(store_url)
    assert not report.intact
    broken = report.first_break
    assert (broken.kind, broken.entry.id, broken.entry.user, broken.entry.operation) == ("modified", 3, "user3",
                                                                                           "config_apply")
    assert broken.expected == six[2].entry_hash and broken.found != six[2].entry_hash
    assert "entry id 3" in broken.message and report.entries_checked == 2


@pytest.mark.parametrize("change", ["success = :v", "prev_hash = :h", "operation = 'deploy_strategy'"])
def test_any_edited_field_is_modified(store_url, six, change):
    sql(store_url, f"UPDATE audit_entry SET {change} WHERE id = 5", v=False, h="ab" * 32)
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id) == ("modified", 5)


def test_a_row_rewritten_with_a_recomputed_hash_is_modified(store_url, six):
    """The intruder recomputes the edited row's own hash: the next entry still links to the original."""
    row = forged(six[1].entry_hash, six[2].timestamp, user="user3", details='{"n": 333}')
    sql(store_url, 'UPDATE audit_entry SET details = :d, "user" = :u, changed_files = :c, entry_hash = :h '
                   "WHERE id = 3", d=row["details"], u=row["user"], c=row["changed_files"], h=row["entry_hash"])
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id) == ("modified", 3)
    assert broken.expected == six[2].entry_hash and "rewritten" in broken.message


def test_a_deleted_row_is_named_by_the_gap(store_url, six):
    sql(store_url, "DELETE FROM audit_entry WHERE id = 3")
    report = verify_chain(store_url)
    broken = report.first_break
    assert (broken.kind, broken.entry.id) == ("deleted", 4)
    assert broken.expected == six[1].entry_hash and broken.found == six[2].entry_hash
    assert "between entry id 2 and entry id 4" in broken.message


def test_deleting_the_first_row_is_caught(store_url, six):
    sql(store_url, "DELETE FROM audit_entry WHERE id = 1")
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id, broken.expected) == ("deleted", 2, GENESIS_HASH)


def test_a_forged_row_with_a_correct_hash_is_inserted(store_url, six):
    """Ids renumbered to make room, then a row that links to entry 3 and hashes correctly."""
    sql(store_url, "UPDATE audit_entry SET id = id * 10")
    insert_rows(store_url, [forged(six[2].entry_hash, six[2].timestamp + timedelta(microseconds=1), id=35)])
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id, broken.entry.user) == ("inserted", 35, "mallory")
    assert "links past it" in broken.message


def test_a_forged_row_that_links_nowhere_is_inserted(store_url, six):
    sql(store_url, "UPDATE audit_entry SET id = id * 10")
    insert_rows(store_url, [forged("ab" * 32, six[2].timestamp, id=35)])
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id) == ("inserted", 35)


def test_a_forged_row_appended_as_a_fork_is_inserted(store_url, six):
    """At the end, linking back to entry 3, which entry 4 already follows."""
    insert_rows(store_url, [forged(six[2].entry_hash, six[-1].timestamp, id=7)])
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id) == ("inserted", 7)
    assert "entry id 4 already follows" in broken.message


def test_swapped_ids_are_reordered(store_url, six):
    sql(store_url, "UPDATE audit_entry SET id = -2 WHERE id = 2")
    sql(store_url, "UPDATE audit_entry SET id = 2 WHERE id = 4")
    sql(store_url, "UPDATE audit_entry SET id = 4 WHERE id = -2")
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id, broken.entry.user) == ("reordered", 2, "user4")
    assert "comes after it" in broken.message


def test_adjacent_swap_is_reordered(store_url, six):
    sql(store_url, "UPDATE audit_entry SET id = -2 WHERE id = 2")
    sql(store_url, "UPDATE audit_entry SET id = 2 WHERE id = 3")
    sql(store_url, "UPDATE audit_entry SET id = 3 WHERE id = -2")
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id) == ("reordered", 2)


def test_an_entry_moved_to_the_end_is_reordered(store_url, six):
    sql(store_url, "UPDATE audit_entry SET id = 7 WHERE id = 2")
    broken = verify_chain(store_url).first_break
    assert (broken.kind, broken.entry.id) == ("reordered", 3)
    assert "entry id 7" in broken.message


# -- windows -------------------------------------------------------------------------------------

@pytest.fixture
def three_days(store_url):
    """Four entries a day for three days: ids 1-4 on day 1, 5-8 on day 2, 9-12 on day 3."""
    moments = [DAY + timedelta(days=d, hours=h) for d in range(3) for h in (1, 7, 13, 19)]
    return chain_at(store_url, moments)


def test_a_window_is_verified_anchored_on_the_entry_before_it(store_url, three_days):
    report = verify_chain(store_url, DAY + timedelta(days=1), DAY + timedelta(days=2))
    assert report.intact
    assert (report.entries_checked, report.first_id, report.last_id) == (4, 5, 8)
    assert report.anchor.id == 4 and "anchored on entry id 4" in report.notes[0]
    assert report.head_hash == three_days[7]["entry_hash"]


def test_tampering_outside_the_window_is_out_of_its_scope(store_url, three_days):
    sql(store_url, "UPDATE audit_entry SET details = '{}' WHERE id = 2")
    assert verify_chain(store_url, DAY + timedelta(days=1)).intact
    assert verify_chain(store_url).first_break.entry.id == 2


def test_a_window_catches_a_deletion_at_its_edge(store_url, three_days):
    sql(store_url, "DELETE FROM audit_entry WHERE id = 5")  # the window's first entry
    broken = verify_chain(store_url, DAY + timedelta(days=1), DAY + timedelta(days=2)).first_break
    assert (broken.kind, broken.entry.id) == ("deleted", 6)


def test_a_window_checks_its_anchor(store_url, three_days):
    sql(store_url, "UPDATE audit_entry SET details = '{}' WHERE id = 4")
    broken = verify_chain(store_url, DAY + timedelta(days=1), DAY + timedelta(days=2)).first_break
    assert (broken.kind, broken.entry.id) == ("modified", 4)


def test_a_window_catches_tampering_inside_it(store_url, three_days):
    sql(store_url, "UPDATE audit_entry SET details = '{}' WHERE id = 10")
    assert verify_chain(store_url, DAY + timedelta(days=1), DAY + timedelta(days=2)).intact
    broken = verify_chain(store_url, DAY + timedelta(days=2)).first_break
    assert (broken.kind, broken.entry.id) == ("modified", 10)


def test_windows_at_the_start_and_with_no_entries(store_url, three_days):
    report = verify_chain(store_url, end=DAY + timedelta(days=1))
    assert report.intact and report.anchor is None and (report.first_id, report.last_id) == (1, 4)
    empty = verify_chain(store_url, DAY + timedelta(days=10))
    assert empty.intact and empty.entries_checked == 0 and empty.notes == ["no entries in the window"]


# -- the command ---------------------------------------------------------------------------------

def _parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser(only="audit")
    return parser.parse_args(argv)


@pytest.fixture
def cli_store(monkeypatch, store_url):
    """cmd_audit on an environment whose store is SQLite or PostgreSQL (no block server needed)."""
    import blocks
    url = store_url
    monkeypatch.setattr(audit_cli, "environment_for", lambda config, quiet=False, requested_user=None: "prod")
    monkeypatch.setattr(blocks.TradeopsEnvironment, "load", classmethod(
        lambda cls, name: SimpleNamespace(store_url=lambda: url, offsite=lambda: None,
                                          access_users={"dana": "compliance_officer"}, access_default_user="dana",
                                          access_logins={os_login(): "dana"})))
    return url


def test_audit_verify_exits_0_on_an_intact_chain(cli_store, capsys):
    chain_at(cli_store, [DAY + timedelta(hours=h) for h in range(5)])
    assert audit_cli.run(_parse(["audit", "verify"])) == 0
    assert "audit chain intact: 5 entries" in capsys.readouterr().out
    assert audit_cli.run(_parse(["audit", "verify", "--from", "2026-03-02T02:00", "--json"])) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # entries 3..5: reading the trail does not append to it, so the head did not move
    assert result["intact"] and result["entries_checked"] == 3 and result["anchor"]["id"] == 2
    assert list(hashes(cli_store)) == [1, 2, 3, 4, 5]


def test_audit_verify_exits_1_naming_the_entry(cli_store, capsys):
    chain_at(cli_store, [DAY + timedelta(hours=h) for h in range(5)])
    sql(cli_store, "DELETE FROM audit_entry WHERE id = 3")
    assert audit_cli.run(_parse(["audit", "verify"])) == 1
    assert "BROKEN (deleted)" in capsys.readouterr().err
    assert audit_cli.run(_parse(["audit", "verify", "--from", "2026-03-02", "--to", "2026-03-02",
                                       "--json"])) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["first_break"]["kind"] == "deleted" and result["first_break"]["entry"]["id"] == 4
    assert "entry id 4" in captured.err


def audit_json(capsys, *argv: str) -> tuple[int, object]:
    code = audit_cli.run(_parse(["audit", *argv, "--json"]))
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_audit_list_filters_without_sql(cli_store, capsys):
    """An auditor samples entries by period, user, operation and flow run, as JSON, CSV or a table."""
    chain_at(cli_store, [DAY + timedelta(hours=h) for h in range(5)])
    run_id = "0b3c5f0e-8d6a-4c1e-9a51-2f4b7c9d1e11"
    sql(cli_store, "UPDATE audit_entry SET flow_run_id = :r WHERE id IN (2, 4)", r=run_id)
    if cli_store.startswith("postgresql"):  # chain_at wrote its ids itself
        sql(cli_store, "SELECT setval(pg_get_serial_sequence('audit_entry', 'id'), 5)")
    append_audit(cli_store, "strategy_promote", "bob", strategy_name="momentum_alpha", version="1.2.0",
                 details={"note": "é, \"quoted\"\nline"}, changed_files=["a.py"])
    code, everything = audit_json(capsys, "list")
    assert code == 0 and [e["id"] for e in everything] == [1, 2, 3, 4, 5, 6]
    assert everything[5]["details"] == {"note": "é, \"quoted\"\nline"} and everything[5]["changed_files"] == ["a.py"]
    assert everything[1]["flow_run_link"].endswith(f"flow-run/{run_id}") and everything[0]["flow_run_link"] is None
    assert [e["id"] for e in audit_json(capsys, "list", "--user", "user3")[1]] == [3]
    assert [e["id"] for e in audit_json(capsys, "list", "--operation", "strategy_promote")[1]] == [6]
    assert [e["id"] for e in audit_json(capsys, "list", "--flow-run", run_id)[1]] == [2, 4]
    assert [e["id"] for e in audit_json(capsys, "list", "--from", "2026-03-02T01:00", "--to", "2026-03-02T03:00")[1]] \
        == [2, 3]
    assert [e["id"] for e in audit_json(capsys, "list", "--from", "2026-03-02", "--to", "2026-03-02",
                                        "--flow-run", run_id)[1]] == [2, 4]
    assert audit_json(capsys, "list", "--to", "2026-03-01")[1] == []

    assert audit_cli.run(_parse(["audit", "list", "--csv"])) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["id"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert json.loads(rows[5]["details"]) == everything[5]["details"] and rows[5]["success"] == "True"
    assert [r["entry_hash"] for r in rows] == [e["entry_hash"] for e in everything]
    assert audit_cli.run(_parse(["audit", "list", "--user", "bob"])) == 0
    out, err = capsys.readouterr()
    assert "strategy_promote" in out and "momentum_alpha 1.2.0" in out and "1 entry" in err
    assert list(hashes(cli_store)) == [1, 2, 3, 4, 5, 6]  # reads leave no entry


def test_audit_show_gives_an_entry_its_hash_predecessor_and_verification(cli_store, capsys):
    rows = chain_at(cli_store, [DAY + timedelta(hours=h) for h in range(4)])
    code, shown = audit_json(capsys, "show", "3")
    assert code == 0 and shown["verified"] and shown["hash_holds"] and shown["links_to_predecessor"]
    assert shown["entry"]["entry_hash"] == rows[2]["entry_hash"] and shown["entry"]["user"] == "user3"
    assert shown["predecessor"] == {"id": 2, "entry_hash": rows[1]["entry_hash"]}
    assert shown["exported"] is None  # no offsite storage: unknown
    assert audit_json(capsys, "show", "1")[1]["predecessor"] is None
    sql(cli_store, "UPDATE audit_entry SET details = '{\"n\": 99}' WHERE id = 3")
    code, shown = audit_json(capsys, "show", "3")
    assert code == 1 and not shown["verified"] and not shown["hash_holds"]
    sql(cli_store, "DELETE FROM audit_entry WHERE id = 2")
    code, shown = audit_json(capsys, "show", "3")
    assert code == 1 and not shown["links_to_predecessor"] and shown["predecessor"]["id"] == 1
    assert audit_cli.run(_parse(["audit", "show", "4"])) == 0
    out = capsys.readouterr().out
    assert f"entry hash:        {rows[3]['entry_hash']} (its content hashes to it)" in out
    assert "verified:          yes" in out
    from tradeops.errors import UsageError

    with pytest.raises(UsageError, match="no audit entry id 42"):
        audit_cli.run(_parse(["audit", "show", "42"]))


def test_audit_verify_rejects_an_inverted_window(cli_store):
    from tradeops.errors import UsageError

    with pytest.raises(UsageError, match="is not before"):
        audit_cli.run(_parse(["audit", "verify", "--from", "2026-03-05", "--to", "2026-03-01"]))


# -- appends: concurrent writers, failures ------------------------------------------------------

def test_eight_concurrent_writers_never_fork_the_chain(store_url):
    open_store(store_url)
    run = run_writers(store_url, writers=8, appends_each=50)
    print(f"{store_url.split(':')[0]}: 8 writers, {run.appends} appends, {run.per_second:.0f}/s")
    engine = create_engine(sqlalchemy_url(store_url))
    with engine.connect() as conn:
        total, links, users = conn.execute(text(
            'SELECT count(*), count(DISTINCT prev_hash), count(DISTINCT "user") FROM audit_entry')).one()
    engine.dispose()
    assert (total, links, users) == (400, 400, 8)  # no two entries share a predecessor
    report = verify_chain(store_url)
    assert report.intact and report.entries_checked == 400, report.summary()


def test_writers_never_fork_under_a_repeatable_read_default(pg_database):
    """A database whose default isolation is REPEATABLE READ would hand the head read a snapshot
    taken before the lock was granted; appends set READ COMMITTED themselves."""
    open_store(pg_database)
    database = pg_database.rsplit("/", 1)[1].split("?")[0]
    sql(pg_database, f"ALTER DATABASE \"{database}\" SET default_transaction_isolation TO 'repeatable read'")
    run_writers(pg_database, writers=8, appends_each=40)
    engine = create_engine(sqlalchemy_url(pg_database))
    with engine.connect() as conn:
        assert conn.execute(text("SHOW default_transaction_isolation")).scalar() == "repeatable read"
        total, links = conn.execute(text("SELECT count(*), count(DISTINCT prev_hash) FROM audit_entry")).one()
    engine.dispose()
    assert (total, links) == (320, 320)
    assert verify_chain(pg_database).intact


def test_a_failed_append_leaves_the_chain_and_the_lock_free(store_url, six):
    with pytest.raises(Exception):  # refused by the database: an integer out of range, a NULL operation
        append_audit(store_url, "config_apply" if "postgresql" in store_url else None, "alice",
                     execution_time_ms=2**40)
    entry = append_audit(store_url, "config_apply", "alice")  # the lock was released: this does not hang
    assert entry.prev_hash == six[-1].entry_hash
    assert list(hashes(store_url))[-1] == entry.id and len(hashes(store_url)) == 7  # PostgreSQL skips an id
    assert verify_chain(store_url).intact


def test_a_value_too_long_for_its_column_is_refused_before_hashing(store_url, six):
    """PostgreSQL cuts a varchar(n) value whose excess is all spaces to n characters without an
    error: stored shorter than it was hashed, the entry would read as tampered. It is refused instead,
    on both stores; a value that fills its column exactly, trailing spaces and all, is kept whole."""
    from tradeops.store.records import AuditValueTooLong

    for fields in ({"user": "alice" + " " * 60}, {"strategy_name": "momentum" + " " * 193},
                   {"version": "1.2.3" + " " * 60}, {"operation": "strategy_version" + " " * 49}):
        with pytest.raises(AuditValueTooLong, match=f"{next(iter(fields))} is 65|strategy_name is 201"):
            append_audit(store_url, **{"operation": "strategy_version", "user": "alice", **fields})
    assert len(hashes(store_url)) == 6  # nothing recorded
    whole = append_audit(store_url, "strategy_version", "alice" + " " * 59, strategy_name="s" + " " * 199)
    report = verify_chain(store_url)
    assert report.intact and report.entries_checked == 7, report.summary()
    engine = create_engine(sqlalchemy_url(store_url))
    with engine.connect() as conn:
        stored = conn.execute(text('SELECT "user", strategy_name FROM audit_entry WHERE id = :id'),
                              {"id": whole.id}).one()
    engine.dispose()
    assert tuple(stored) == ("alice" + " " * 59, "s" + " " * 199)


def test_the_database_seals_entries_exactly_as_canonical_audit_content(pg_database):
    """On PostgreSQL the database stamps, links and hashes each entry; for odd values too, every
    stored hash is the one canonical_audit_content gives for the row read back, and the entries
    append_audit returns are those rows."""
    rng = random.Random(11)

    def odd(limit: int) -> str:  # PostgreSQL text cannot hold NUL
        return _odd_text(rng).replace("\x00", "")[:limit]

    returned = []
    for n in range(150):
        maybe = lambda limit: None if rng.random() < 0.3 else odd(limit)  # noqa: E731
        returned.append(append_audit(
            pg_database, odd(64) or "op", odd(64) or "user", success=rng.random() < 0.5,
            strategy_name=maybe(200), version=maybe(64), repository_hash=maybe(64),
            execution_time_ms=rng.choice([None, 0, -1, 7, 2**31 - 1]), changed_files=[odd(40), "a.py"],
            compliance_flags={"sox": odd(40)}, details={"note": odd(40), "n": n, "%s": "$1 || '"}))
    engine = create_engine(sqlalchemy_url(pg_database))
    with Session(engine) as session:
        stored = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    engine.dispose()
    assert len(stored) == 150 and stored[0].prev_hash == GENESIS_HASH
    for before, entry, back in zip([None, *stored], stored, returned):
        assert hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest() == entry.entry_hash
        assert before is None or entry.prev_hash == before.entry_hash
        assert before is None or entry.timestamp >= before.timestamp  # stamped under the lock
        assert back.model_dump() == entry.model_dump()
    assert abs((stored[-1].timestamp - datetime.now(timezone.utc)).total_seconds()) < 60
    assert verify_chain(pg_database).intact


def test_a_writer_connection_the_server_closed_is_replaced(pg_database):
    """A kept writer connection that the server ended while idle (restart, idle timeout, an
    administrator) is noticed before the next append is sent, and replaced."""
    first = append_audit(pg_database, "config_apply", "alice")
    sql(pg_database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND query LIKE '%tradeops_audit_flushed%' "
                     "AND pid <> pg_backend_pid()")
    for _ in range(100):  # the backend exits a moment after the signal
        if not writer_backends(pg_database):
            break
        time.sleep(0.05)
    second = append_audit(pg_database, "config_apply", "bob")
    assert second.prev_hash == first.entry_hash and verify_chain(pg_database).intact


def writer_backends(url: str) -> int:
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND query LIKE '%tradeops_audit_flushed%' AND pid <> pg_backend_pid()")).scalar()
    engine.dispose()
    return count


# -- the parallel walk (PostgreSQL, long chains) agrees with the single walk ---------------------

@pytest.mark.parametrize("tamper", [
    None,
    "UPDATE audit_entry SET details = '{}' WHERE id = 9",
    "DELETE FROM audit_entry WHERE id = 7",  # the first row of the second slice
    "UPDATE audit_entry SET id = 40 WHERE id = 11",
])
def test_parallel_slices_report_what_one_walk_reports(pg_database, monkeypatch, tamper):
    import os

    import tasks.audit.verify as verify

    chain_at(pg_database, [DAY + timedelta(minutes=m) for m in range(24)])
    if tamper:
        sql(pg_database, tamper)
    single = verify_chain(pg_database).to_dict()
    monkeypatch.setattr(verify, "PARALLEL_MIN_ROWS", 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)  # four slices
    slices = []
    run_slice = verify._run_slice
    monkeypatch.setattr(verify, "_run_slice", lambda job: slices.append((job["low"], job["high"])) or run_slice(job))
    parallel = verify_chain(pg_database).to_dict()
    assert len(slices) == 4 and min(slices)[0] == 1  # (1-6, 7-12, ... or 1-10, ... when id 40 exists)
    for report in (single, parallel):
        report.pop("seconds")
    assert parallel == single
    assert single["intact"] is (tamper is None)


def test_rows_in_memory_classify_like_the_store():
    """The same walk and classification over rows held in memory (an exported copy read back)."""
    from tasks.audit.chain import first_break

    rows, previous = [], GENESIS_HASH
    for n in range(1, 7):
        row = forged(previous, DAY + timedelta(hours=n), id=n, user=f"user{n}")
        rows.append((n, iso_timestamp(row["timestamp"]), *[row[k] for k in (
            "operation", "user", "strategy_name", "version", "repository_hash", "execution_time_ms", "success",
            "changed_files", "compliance_flags", "details", "flow_run_id", "prev_hash", "entry_hash")]))
        previous = row["entry_hash"]
    result, broken = first_break(rows, GENESIS_HASH)
    assert broken is None and result.checked == 6 and result.head == previous
    assert first_break([r for r in rows if r[0] != 3], GENESIS_HASH)[1].kind == "deleted"
    swapped = [(4, *rows[1][1:]) if r[0] == 2 else (2, *rows[3][1:]) if r[0] == 4 else r for r in rows]
    assert (first_break(swapped, GENESIS_HASH)[1].kind, first_break(swapped, GENESIS_HASH)[1].entry.id) == ("reordered", 2)
    edited = [(3, *rows[2][1:11], '{"n": 0}', *rows[2][12:]) if r[0] == 3 else r for r in rows]
    assert first_break(edited, GENESIS_HASH)[1].kind == "modified"


def test_a_backup_export_is_checked_with_the_same_walk(tmp_path):
    """The weekly backup's exported trail: intact, then one exported line edited."""
    from tasks.backup.audit import check_audit_export, export_audit_trail
    from tasks.backup.postgres import BackupError
    from tradeops.store.engine import upgrade

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(url)
    for n in range(5):
        append_audit(url, "test_op", f"user{n}")
    exported = export_audit_trail(url, tmp_path / "audit.jsonl")
    assert check_audit_export(tmp_path / "audit.jsonl") == exported and exported["entries"] == 5
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    edited = json.loads(lines[2])
    edited["user"] = "mallory"
    lines[2] = json.dumps(edited, sort_keys=True)
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(BackupError, match=r"audit export audit.jsonl: entry id 3 .*was modified"):
        check_audit_export(tmp_path / "audit.jsonl")
