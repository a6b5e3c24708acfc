"""The maintenance health report against a real PostgreSQL: every problem the checks look for is
planted in a database of this module's own, then found (and its look-alikes not found), with the
thresholds held at their exact boundaries."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import psycopg2
import pytest

from tasks.maintenance.checks import CHECKS, run_checks
from tasks.maintenance.checks.cache import check_cache_hit_rate
from tasks.maintenance.checks.sequences import check_sequences
from tasks.maintenance.checks.slow_queries import check_slow_queries
from tasks.maintenance.report import report_markdown, results_as_rows
from tasks.maintenance.thresholds import MAINTENANCE_THRESHOLDS

pytestmark = pytest.mark.postgres

SERVER = os.environ.get("TRADEOPS_TEST_MAINT_PG", "postgresql://postgres@127.0.0.1:5432")

PLANTED = """
CREATE TABLE orders (id bigint PRIMARY KEY, account int NOT NULL, symbol text NOT NULL);
INSERT INTO orders SELECT g, g % 500, 'S' || (g % 50) FROM generate_series(1, 20000) g;
CREATE INDEX orders_account_idx ON orders (account);                    -- redundant: a prefix of the next
CREATE INDEX orders_account_symbol_idx ON orders (account, symbol);
CREATE INDEX orders_symbol_partial_idx ON orders (symbol) WHERE account = 1;  -- partial: not a duplicate
CREATE INDEX orders_symbol_account_idx ON orders (symbol, account);
CREATE INDEX orders_account_hash_idx ON orders USING hash (account);   -- other method: not a duplicate
CREATE INDEX orders_id_include_idx ON orders (id) INCLUDE (account);    -- INCLUDE columns: kept, as the pkey is
CREATE TABLE accounts (id int PRIMARY KEY);
ALTER TABLE orders ADD CONSTRAINT orders_account_positive CHECK (account > 0) NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account) REFERENCES accounts (id) NOT VALID;
CREATE DOMAIN quantity AS int;
ALTER DOMAIN quantity ADD CONSTRAINT quantity_positive CHECK (VALUE > 0) NOT VALID;

CREATE TABLE fills (id bigint PRIMARY KEY, price int NOT NULL CHECK (price > 0));
INSERT INTO fills SELECT g, 1 + g % 1000 FROM generate_series(1, 20000) g;
CREATE INDEX fills_price_idx ON fills (price);
CREATE INDEX fills_price_copy_idx ON fills (price);                    -- identical: reported once, by name order

CREATE TABLE quotes (symbol text NOT NULL, px int NOT NULL);
INSERT INTO quotes VALUES ('A', 1), ('A', 2);

CREATE SEQUENCE seq_95 MINVALUE 0 MAXVALUE 1000 START 0;
CREATE SEQUENCE seq_90 MINVALUE 0 MAXVALUE 1000 START 0;
CREATE SEQUENCE seq_just_under MINVALUE 0 MAXVALUE 1000 START 0;
CREATE SEQUENCE seq_50 MINVALUE 0 MAXVALUE 1000 START 0;
CREATE SEQUENCE seq_full MINVALUE 0 MAXVALUE 1000 START 0;
CREATE SEQUENCE seq_never_used MINVALUE 0 MAXVALUE 1000 START 0;
CREATE SEQUENCE seq_desc INCREMENT -1 MINVALUE 0 MAXVALUE 1000 START 1000;
SELECT setval('seq_95', 950), setval('seq_90', 900), setval('seq_just_under', 899), setval('seq_50', 500),
       setval('seq_full', 1000), setval('seq_desc', 50);
CREATE TABLE legacy (id int NOT NULL);
CREATE SEQUENCE legacy_id_seq AS bigint OWNED BY legacy.id;            -- runs out where the int column does
SELECT setval('legacy_id_seq', 2000000000);

CREATE TABLE ticks (id int, px int) WITH (autovacuum_enabled = false, autovacuum_freeze_max_age = 100000);
INSERT INTO ticks SELECT g, g FROM generate_series(1, 5000) g;
DELETE FROM ticks WHERE id > 2000;
CREATE TABLE small_churn (id int) WITH (autovacuum_enabled = false);
INSERT INTO small_churn SELECT generate_series(1, 100);
DELETE FROM small_churn WHERE id > 50;
CREATE TABLE empty_table (id int);

CREATE TABLE bloated (id int NOT NULL) WITH (autovacuum_enabled = false);
INSERT INTO bloated SELECT generate_series(1, 100000);
CREATE INDEX bloated_id_idx ON bloated (id);
DELETE FROM bloated WHERE id % 10 <> 0;
SELECT pg_stat_force_next_flush();
"""


def _as_admin(statement: str, params: tuple = ()) -> None:
    """On the maintenance database, in autocommit: CREATE/DROP DATABASE cannot run in a transaction."""
    conn = psycopg2.connect(f"{SERVER}/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params or None)
    finally:
        conn.close()


def _create_database() -> str:
    name = f"tradeops_test_maint_{uuid.uuid4().hex[:8]}"
    _as_admin(f'CREATE DATABASE "{name}"')
    return f"{SERVER}/{name}"


def _drop_database(url: str) -> None:
    _as_admin(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')


@pytest.fixture(scope="module")
def planted_db():
    url = _create_database()
    try:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(PLANTED)
            # Both fail on the duplicate 'A' and leave an invalid index behind.
            for statement in ("CREATE UNIQUE INDEX CONCURRENTLY x_ccnew ON quotes (symbol)",
                              "CREATE UNIQUE INDEX CONCURRENTLY quotes_symbol_uniq ON quotes (symbol)"):
                with pytest.raises(psycopg2.errors.UniqueViolation):
                    cur.execute(statement)
            # The delete's counters are flushed above, so VACUUM's reset of them is not undone later.
            cur.execute("VACUUM ANALYZE bloated")
            cur.execute("ANALYZE orders")
            cur.execute("SELECT pg_stat_force_next_flush()")
        conn.close()
        yield url
    finally:
        _drop_database(url)


@pytest.fixture
def fresh_db():
    url = _create_database()
    yield url
    _drop_database(url)


@pytest.fixture(scope="module")
def results(planted_db):
    return run_checks(planted_db)


def subjects(findings) -> set[str]:
    return {f.subject for f in findings}


def by_subject(findings) -> dict:
    return {f.subject: f for f in findings}


def test_every_check_runs_without_error_on_the_planted_database(results):
    assert list(results) == list(CHECKS)
    errors = [f for findings in results.values() for f in findings if f.severity == "error"]
    assert errors == []


def test_duplicate_index_names_the_redundant_one(results):
    found = by_subject(results["duplicate_indexes"])
    assert set(found) == {"public.orders_account_idx", "public.fills_price_idx"}
    assert len(results["duplicate_indexes"]) == 2
    assert found["public.fills_price_idx"].details["covering_index"] == "fills_price_copy_idx"
    finding = found["public.orders_account_idx"]
    assert finding.details["covering_index"] == "orders_account_symbol_idx"
    assert finding.severity == "warn"
    assert "orders_account_symbol_idx" in finding.message


def test_invalid_indexes_are_reported_and_reindex_leftovers_flagged(results):
    found = by_subject(results["invalid_indexes"])
    assert set(found) == {"public.x_ccnew", "public.quotes_symbol_uniq"}
    assert found["public.x_ccnew"].details["reindex_leftover"] is True
    assert "REINDEX CONCURRENTLY" in found["public.x_ccnew"].message
    assert found["public.quotes_symbol_uniq"].details["reindex_leftover"] is False
    assert "REINDEX" not in found["public.quotes_symbol_uniq"].message
    assert all(f.severity == "warn" for f in found.values())


def test_invalid_indexes_are_not_counted_as_duplicates_or_unused(results):
    flagged = subjects(results["duplicate_indexes"]) | subjects(results["unused_indexes"])
    assert not flagged & {"public.x_ccnew", "public.quotes_symbol_uniq"}


def _index_size(url: str, index: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_relation_size(%s::regclass)", (index,))
        size = cur.fetchone()[0]
    conn.close()
    return size


def test_unused_index_reported_at_exactly_the_size_threshold(planted_db):
    size = _index_size(planted_db, "fills_price_idx")
    assert size > 8192 * 10  # enough rows for a multi-page index
    only = {"unused_indexes": CHECKS["unused_indexes"]}

    at_threshold = run_checks(planted_db, {"unused_index_min_bytes": size}, checks=only)["unused_indexes"]
    finding = by_subject(at_threshold)["public.fills_price_idx"]
    assert finding.value == size and finding.details["idx_scan"] == 0

    above = run_checks(planted_db, {"unused_index_min_bytes": size + 1}, checks=only)["unused_indexes"]
    assert "public.fills_price_idx" not in subjects(above)


def test_unused_indexes_skip_unique_primary_and_small_ones(planted_db, results):
    everything = run_checks(planted_db, {"unused_index_min_bytes": 0},
                            checks={"unused_indexes": CHECKS["unused_indexes"]})["unused_indexes"]
    names = subjects(everything)
    assert "public.orders_account_idx" in names
    assert not {"public.orders_pkey", "public.fills_pkey", "public.accounts_pkey"} & names
    assert results["unused_indexes"] == []  # all planted indexes are under the 10 MiB default


def test_not_valid_constraints_are_reported(results):
    found = by_subject(results["invalid_constraints"])
    assert set(found) == {"public.orders.orders_account_positive", "public.orders.orders_account_fk",
                          "quantity.quantity_positive"}
    assert found["public.orders.orders_account_fk"].details["foreign_table"] == "accounts"
    assert "NOT VALID" in found["public.orders.orders_account_positive"].message


def test_sequences_flagged_from_exactly_ninety_percent(results):
    found = by_subject(results["sequences"])
    assert set(found) == {"public.seq_95", "public.seq_90", "public.seq_full", "public.seq_desc",
                          "public.legacy_id_seq"}
    assert found["public.seq_90"].value == 0.9
    assert found["public.seq_95"].value == 0.95
    assert found["public.seq_desc"].value == 0.95  # descending: used from 1000 down to 50
    assert found["public.seq_full"].severity == "critical"
    assert found["public.seq_95"].severity == "warn"
    legacy = found["public.legacy_id_seq"]
    assert legacy.details["column_type"] == "integer" and legacy.details["effective_max"] == 2**31 - 1
    assert "legacy.id" in legacy.message


def test_sequence_threshold_is_inclusive_at_the_boundary(planted_db):
    flagged = subjects(run_checks(planted_db, {"sequence_used_ratio": 0.95},
                                  checks={"sequences": check_sequences})["sequences"])
    assert {"public.seq_95", "public.seq_desc", "public.seq_full"} <= flagged
    assert "public.seq_90" not in flagged


def test_dead_tuples_reported_by_the_vacuum_check(results):
    found = by_subject(results["vacuum"])
    assert set(found) == {"public.ticks"}  # small_churn has 50 dead: under the 1,000 minimum
    ticks = found["public.ticks"]
    assert ticks.details["n_dead_tup"] == 3000 and ticks.details["n_live_tup"] == 2000
    assert ticks.value == 1.5
    assert ticks.details["autovacuum"] is False and "autovacuum is off" in ticks.message


def test_stale_analyze_skips_empty_and_freshly_analyzed_tables(results):
    names = subjects(results["analyze"])
    assert {"public.ticks", "public.fills"} <= names
    assert not {"public.bloated", "public.orders", "public.empty_table"} & names


def test_index_bloat_estimate_finds_the_thinned_index(results):
    found = by_subject(results["index_bloat"])
    assert set(found) == {"public.bloated_id_idx"}
    bloat = found["public.bloated_id_idx"]
    assert bloat.details["bloat_ratio"] > 0.8  # 90% of the rows deleted, pages kept
    assert bloat.value >= MAINTENANCE_THRESHOLDS["index_bloat_min_bytes"]


def test_wraparound_and_freeze_risk_at_overridden_thresholds(planted_db, results):
    assert results["transaction_id_wraparound"] == []
    name = planted_db.rpartition("/")[2]
    flagged = run_checks(planted_db, {"xid_remaining_flag": 2**31, "autovacuum_freeze_margin": 2**31},
                         checks={k: CHECKS[k] for k in ("transaction_id_wraparound", "autovacuum_freeze")})
    wraparound = by_subject(flagged["transaction_id_wraparound"])
    assert wraparound[f"database {name}"].severity == "warn"
    assert 0 < wraparound["public.orders"].value <= 2**31
    freeze = by_subject(flagged["autovacuum_freeze"])
    assert freeze["public.ticks"].details["freeze_max_age"] == 100000  # the table's reloption wins
    assert freeze["public.orders"].severity == "info"


def test_long_running_and_idle_in_transaction_sessions(planted_db):
    sleeper, idler = psycopg2.connect(planted_db), psycopg2.connect(planted_db)
    sleeper.autocommit = True
    sleeper_pid, idler_pid = sleeper.get_backend_pid(), idler.get_backend_pid()
    with idler.cursor() as cur:
        cur.execute("SELECT 1")  # and stay idle inside the transaction

    def sleep():
        try:
            with sleeper.cursor() as cur:
                cur.execute("SELECT pg_sleep(60)")
        except psycopg2.errors.QueryCanceled:
            pass  # cancelled once the checks have seen it

    thread = threading.Thread(target=sleep)
    thread.start()
    try:
        time.sleep(1.2)
        only = {k: CHECKS[k] for k in ("long_running_queries", "connections")}
        short = run_checks(planted_db, {"long_running_query_seconds": 1, "idle_in_transaction_seconds": 1},
                           checks=only)
        default = run_checks(planted_db, checks=only)
    finally:
        _as_admin("SELECT pg_cancel_backend(%s)", (sleeper_pid,))
        thread.join(10)
        sleeper.close()
        idler.close()
    assert f"pid {sleeper_pid}" in subjects(short["long_running_queries"])
    assert by_subject(short["long_running_queries"])[f"pid {sleeper_pid}"].value >= 1
    assert f"pid {idler_pid}" in subjects(short["connections"])
    assert by_subject(short["connections"])[f"pid {idler_pid}"].severity == "warn"
    assert short["connections"][0].subject == "total" and short["connections"][0].value >= 2
    assert default["long_running_queries"] == []
    assert subjects(default["connections"]) == {"total"}


def test_fresh_database_cache_and_slow_queries(fresh_db):
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cache = check_cache_hit_rate(cur, MAINTENANCE_THRESHOLDS)
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        installed = cur.fetchone() is not None
        slow = check_slow_queries(cur, MAINTENANCE_THRESHOLDS)
    conn.close()
    assert [(f.subject, f.severity, f.value) for f in cache] == [("tables", "info", None), ("indexes", "info", None)]
    if installed:  # not expected in a database created a moment ago, unless template1 carries it
        assert all(f.severity != "error" for f in slow)
    else:
        assert len(slow) == 1 and slow[0].severity == "info"
        assert "shared_preload_libraries" in slow[0].message and "CREATE EXTENSION" in slow[0].message


def test_slow_queries_with_the_extension_created(fresh_db):
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")
        available = cur.fetchone() is not None
        if available:  # contrib installed: create it; the check must then say what else is missing
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cur.execute("SELECT 'pg_stat_statements' = ANY (string_to_array("
                    "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))")
        preloaded = cur.fetchone()[0]
    conn.close()
    slow = run_checks(fresh_db, checks={"slow_queries": check_slow_queries})["slow_queries"]
    assert all(f.severity != "error" for f in slow)
    if not preloaded:
        assert len(slow) == 1 and slow[0].severity == "info"
        assert "shared_preload_libraries" in slow[0].message
        assert ("is installed but not" in slow[0].message) == available


def test_every_check_runs_on_an_empty_database(fresh_db):
    results = run_checks(fresh_db)
    assert [f for findings in results.values() for f in findings if f.severity == "error"] == []
    assert results["duplicate_indexes"] == results["invalid_indexes"] == results["sequences"] == []


def test_a_failing_check_becomes_an_error_finding_and_the_others_run(planted_db):
    def broken(cur, thresholds):
        cur.execute("SELECT * FROM no_such_relation")
        return []

    def slow(cur, thresholds):
        cur.execute("SELECT pg_sleep(5)")
        return []

    def writes(cur, thresholds):
        cur.execute("CREATE TABLE should_not_exist (id int)")
        return []

    registry = {"broken": broken, "sequences": check_sequences, "slow": slow, "writes": writes,
                "cache_hit_rate": check_cache_hit_rate}
    started = time.monotonic()
    results = run_checks(planted_db, checks=registry, statement_timeout_ms=300)
    assert time.monotonic() - started < 4  # the statement_timeout cut the 5 s sleep short
    assert list(results) == list(registry)
    for name, needle in (("broken", "no_such_relation"), ("slow", "statement timeout"),
                         ("writes", "read-only transaction")):
        (error,) = results[name]
        assert error.severity == "error" and error.check == name and error.subject == name
        assert name in error.message and needle in error.message
    assert "public.seq_95" in subjects(results["sequences"])
    assert [f.severity for f in results["cache_hit_rate"]] != ["error"]


def test_run_checks_leaves_a_passed_connection_as_it_was(planted_db):
    conn = psycopg2.connect(planted_db)
    conn.autocommit = True
    try:
        results = run_checks(conn, checks={"sequences": check_sequences})
        assert "public.seq_95" in subjects(results["sequences"])
        assert conn.autocommit is True and not conn.closed
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "0"  # SET LOCAL: nothing leaks past the check's transaction
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        with pytest.raises(ValueError):
            run_checks(conn, checks={"sequences": check_sequences})
    finally:
        conn.close()


def test_unknown_threshold_names_are_refused(planted_db):
    with pytest.raises(KeyError, match="unused_index_bytes"):
        run_checks(planted_db, {"unused_index_bytes": 1})


def test_report_markdown_and_rows(results):
    markdown = report_markdown(results)
    for name in CHECKS:
        assert f"| {name} |" in markdown
    for index in ("orders_account_idx", "x_ccnew", "quotes_symbol_uniq", "bloated_id_idx"):
        assert index in markdown
    assert "## duplicate_indexes" in markdown and "## transaction_id_wraparound" not in markdown
    assert "| duplicate_indexes | **warn** | 2 |" in markdown
    assert "| transaction_id_wraparound | ok | 0 |" in markdown

    rows = results_as_rows(results)
    json.dumps(rows)  # storable as is
    assert {row["check"] for row in rows} == set(CHECKS)
    duplicates = [row for row in rows if row["check"] == "duplicate_indexes"]
    assert {row["subject"] for row in duplicates} == {"public.orders_account_idx", "public.fills_price_idx"}
    assert {row["severity"] for row in duplicates} == {"warn"}
