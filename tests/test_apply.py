"""`tradeops apply`: the file's sections become registered, loadable blocks, and the apply is audited."""

from __future__ import annotations

import asyncio
import json

import pytest
from prefect.client.orchestration import get_client
from sqlmodel import select

from blocks import ALL_BLOCKS, CertificateSet, DatabaseTarget, GitRepositorySet, TradeopsEnvironment
from tradeops.cli.main import main
from tradeops.store import AuditEntry, session_for
from tradeops.store.identity import os_login


@pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)
def test_apply_upserts_blocks_and_audits(tmp_path, monkeypatch, capsys):
    (tmp_path / "repos" / "alpha" / ".git").mkdir(parents=True)
    monkeypatch.setenv("PLATFORM_DSN", "postgresql://ops:pw@127.0.0.1:5432/platform")
    path = tmp_path / "tradeops.toml"
    path.write_text(
        '[environment]\nname = "staging"\ndata_dir = "state"\n'
        '[[databases]]\nname = "platform"\nurl_env = "PLATFORM_DSN"\n'
        '[[git]]\nname = "strategies"\nroot = "repos"\n'
        '[[certificates]]\nname = "tls"\nfiles = ["certs/api.pem"]\nendpoints = ["api.internal:443"]\n'
    )
    assert main(["apply", "--config", str(path)]) == 0
    assert "environment 'staging' applied" in capsys.readouterr().out

    env = TradeopsEnvironment.load("staging")
    assert env.data_dir == str(tmp_path / "state")
    assert env.database_blocks == ["staging-db-platform"]
    assert DatabaseTarget.load("staging-db-platform").url.get_secret_value().endswith("/platform")
    assert GitRepositorySet.load("staging-git-strategies").repositories() == [tmp_path / "repos" / "alpha"]
    certs = CertificateSet.load("staging-certs-tls")
    assert (certs.files, certs.endpoints) == ([str(tmp_path / "certs" / "api.pem")], ["api.internal:443"])

    async def slugs():
        async with get_client() as client:
            return {(await client.read_block_type_by_slug(cls.get_block_type_slug())).slug for cls in ALL_BLOCKS}

    assert asyncio.run(slugs()) == {cls.get_block_type_slug() for cls in ALL_BLOCKS}

    # applying again updates in place (upsert) what changed, and each change leaves an audit record
    # with the OS login that made it and every key's old and new value; the same file again changes nothing
    path.write_text(path.read_text().replace('"api.internal:443"', '"api.internal:8443"'))
    assert main(["apply", "--config", str(path)]) == 0
    assert CertificateSet.load("staging-certs-tls").endpoints == ["api.internal:8443"]
    assert main(["apply", "--config", str(path)]) == 0
    with session_for(env.ops_store_url.get_secret_value()) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.operation == "config_apply")).all()
    assert [e.user for e in entries] == [os_login(), os_login()]  # no [access] yet: the login's own name
    first, second = (json.loads(e.details) for e in entries)
    assert first["environment"] == "staging" and first["created"] and first["login"] == os_login()
    assert second["changes"] == [{"key": "staging-certs-tls.endpoints", "old": ["api.internal:443"],
                                  "new": ["api.internal:8443"]}] and second["blocks"] == ["staging-certs-tls"]
    assert {"key": "staging-db-platform.url", "old": None, "new": "(secret)"} in first["changes"]
    assert "pw" not in entries[0].details


def test_missing_env_var_for_url_env_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NOPE_DSN", raising=False)
    path = tmp_path / "tradeops.toml"
    path.write_text('[[databases]]\nname = "platform"\nurl_env = "NOPE_DSN"\n')
    assert main(["apply", "--config", str(path)]) == 2
    assert "databases[0].url_env: environment variable NOPE_DSN is not set" in capsys.readouterr().err
