"""The maintenance statements on real PostgreSQL: each does what it says, within its bounds."""

from __future__ import annotations

from datetime import date

import psycopg2

from tasks.maintenance.operations import (
    Budget, drop_reindex_leftovers, next_month_partitions, reindex_bloated, run_statement,
)
from tasks.maintenance.thresholds import thresholds_with


def _autocommit(url: str):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def _scalar(conn, query: str):
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone()[0]


def test_bloated_index_is_rebuilt_concurrently_and_shrinks(pg_database):
    conn = _autocommit(pg_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE bloated (id int NOT NULL) WITH (autovacuum_enabled = false);"
                    "INSERT INTO bloated SELECT generate_series(1, 100000);"
                    "CREATE INDEX bloated_id_idx ON bloated (id);"
                    "DELETE FROM bloated WHERE id % 10 <> 0;")
        cur.execute("VACUUM ANALYZE bloated")
        statements = reindex_bloated(cur, thresholds_with({"index_bloat_min_bytes": 0}))
    assert [s.as_string(conn) for s in statements] == ['REINDEX INDEX CONCURRENTLY "public"."bloated_id_idx"']
    before = _scalar(conn, "SELECT pg_relation_size('bloated_id_idx')")
    steps = [run_statement(conn, s, Budget(60)) for s in statements]
    assert [s.outcome for s in steps] == ["done"]
    assert _scalar(conn, "SELECT pg_relation_size('bloated_id_idx')") < before / 3
    assert _scalar(conn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
    conn.close()


def test_reindex_leftover_is_dropped(pg_database):
    conn = _autocommit(pg_database)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (1)")
        try:  # a unique index built concurrently over duplicates fails and stays, invalid
            cur.execute("CREATE UNIQUE INDEX CONCURRENTLY t_id_idx_ccnew ON t (id)")
        except psycopg2.Error:
            pass
        statements = drop_reindex_leftovers(cur)
    assert [s.as_string(conn) for s in statements] == ['DROP INDEX CONCURRENTLY IF EXISTS "public"."t_id_idx_ccnew"']
    assert run_statement(conn, statements[0], Budget(60)).outcome == "done"
    assert _scalar(conn, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
    conn.close()


def test_next_months_partition_meets_the_last_one_whatever_the_time_zone(pg_database):
    conn = _autocommit(pg_database)
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'America/New_York';"
                    "CREATE TABLE ticks (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);"
                    "CREATE TABLE ticks_2026_11 PARTITION OF ticks "
                    "FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')")
        statements = next_month_partitions(cur, date(2026, 11, 23))
        assert len(statements) == 1
        assert run_statement(conn, statements[0], Budget(60)).outcome == "done"
        cur.execute("INSERT INTO ticks VALUES ('2026-12-01 00:00:00+00'), ('2026-12-31 23:59:59+00')")
        cur.execute("SELECT tableoid::regclass::text, count(*) FROM ticks GROUP BY 1")
        assert cur.fetchall() == [("ticks_2026_12", 2)]
        assert next_month_partitions(cur, date(2026, 11, 23)) == []  # already there: nothing to do
    conn.close()


def test_no_statement_starts_after_the_budget(pg_database):
    conn = _autocommit(pg_database)
    step = run_statement(conn, psycopg2.sql.SQL("VACUUM"), Budget(0))
    assert step.outcome == "skipped: the run's time budget is spent"
    conn.close()
