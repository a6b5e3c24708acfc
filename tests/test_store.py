"""The ops store: migrations match the models, upgrades keep records, the audit chain links."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel, Session, select

from tradeops.store import AuditEntry, HealthResult
from alembic.script import ScriptDirectory

from tradeops.store.engine import alembic_config, open_store, sqlalchemy_url, upgrade
from tradeops.store.records import GENESIS_HASH, append_audit, canonical_audit_content


HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _diff(url: str) -> list:
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_database")


def test_migrations_build_exactly_the_models(store_url):
    upgrade(store_url)
    assert _diff(store_url) == []
    tables = set(inspect(create_engine(sqlalchemy_url(store_url))).get_table_names())
    assert {"health_result", "backup_set", "backup_artifact", "audit_entry", "flow_run_summary",
            "alembic_version"} <= tables


def test_upgrade_again_keeps_records(store_url):
    engine = open_store(store_url)
    with Session(engine) as session:
        session.add(HealthResult(environment="e", target="t", check="c", status="pass", flow_run_id="run-1"))
        session.commit()
    upgrade(store_url)  # a second upgrade (as after installing a newer tradeops) is a no-op on data
    with Session(engine) as session:
        rows = session.exec(select(HealthResult)).all()
    assert [(r.target, r.flow_run_id) for r in rows] == [("t", "run-1")]
    with create_engine(sqlalchemy_url(store_url)).connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD


def test_audit_entries_form_a_hash_chain(store_url):
    first = append_audit(store_url, "config_apply", "alice", details={"environment": "sandbox"})
    second = append_audit(store_url, "sandbox_create", "bob", success=False, changed_files=["a.py"])
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.entry_hash
    with Session(open_store(store_url)) as session:
        stored = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    for entry in stored:  # recomputed independently from the stored row
        assert hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest() == entry.entry_hash
    assert json.loads(stored[1].changed_files) == ["a.py"]


def test_upgrade_from_the_first_schema_keeps_catalog_rows(store_url):
    """A store created by the first release upgrades in place: rows survive, new columns default."""
    upgrade(store_url, "0001")
    engine = create_engine(sqlalchemy_url(store_url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO backup_set (set_id, environment, kind, status, created_at) "
                          "VALUES ('s1', 'prod', 'daily', 'complete', '2026-01-02 02:00:00')"))
        conn.execute(text("INSERT INTO backup_artifact (set_id, target, kind, path, sha256, size, created_at) "
                          "VALUES ('s1', 'platform', 'pg_dump', '/b/s1/platform.dump', :h, 42, '2026-01-02 02:00:00')"),
                     {"h": "ab" * 32})
    upgrade(store_url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT set_id, size, details, reused_from FROM backup_artifact")).one()
        assert tuple(row) == ("s1", 42, "{}", None)
        assert conn.execute(text("SELECT verified_at FROM backup_set")).scalar() is None
    assert _diff(store_url) == []


def test_db_upgrade_migrates_the_url_it_is_given_even_when_the_environment_names_another(tmp_path, monkeypatch):
    from sqlalchemy import create_engine, inspect

    from tradeops.cli.main import main

    given, from_env = tmp_path / "given.db", tmp_path / "from-env.db"
    monkeypatch.setenv("TRADEOPS_DATABASE_URL", f"sqlite:///{from_env}")
    assert main(["db", "upgrade", "--url", f"sqlite:///{given}"]) == 0
    assert "audit_entry" in inspect(create_engine(f"sqlite:///{given}")).get_table_names()
    assert not from_env.exists()


@pytest.mark.postgres
def test_the_kept_writer_connection_works_above_descriptor_1024(pg_database):
    """A long-lived process (the full suite once, a server) holds more than 1024 files: the check
    that the kept connection is still usable must not use select(), which refuses such numbers."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        first = append_audit(pg_database, "config_apply", "alice", details={"descriptors": "many"})
        second = append_audit(pg_database, "config_apply", "bob")  # reuses the kept writer: its check runs
        assert second.prev_hash == first.entry_hash
    finally:
        for fd in held:
            os.close(fd)
