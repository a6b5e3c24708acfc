"""Connections to platform databases (PostgreSQL via psycopg2, SQLite via sqlite3)."""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from typing import Any, Iterator
from urllib.parse import urlparse

import psycopg2

CONNECT_TIMEOUT_S = 5


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> str:
    """`sqlite:////abs/path.db` -> `/abs/path.db`, `sqlite:///rel.db` -> `rel.db` (SQLAlchemy's form)."""
    return url.split(":///", 1)[1]


def libpq_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def database_name(url: str) -> str:
    """The database a URL names (no credentials)."""
    return urlparse(libpq_dsn(url)).path.lstrip("/")


@contextmanager
def connect(url: str, autocommit: bool = True) -> Iterator[Any]:
    """A DB-API connection; PostgreSQL ones time out after CONNECT_TIMEOUT_S seconds."""
    if is_sqlite(url):
        path = sqlite_path(url)
        with closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=CONNECT_TIMEOUT_S)) as conn:
            yield conn
        return
    conn = psycopg2.connect(libpq_dsn(url), connect_timeout=CONNECT_TIMEOUT_S,
                            application_name="tradeops")
    conn.autocommit = autocommit
    try:
        yield conn
    finally:
        conn.close()


def scalar(conn: Any, sql: str, params: tuple = ()) -> Any:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return row[0] if row else None
    finally:
        cursor.close()


def libpq_command_env(url: str) -> tuple[str, dict[str, str]]:
    """A connection string without the password, and the environment carrying it (PGPASSWORD),
    so that pg_dump/pg_restore command lines never show a secret in `ps` or in logs."""
    from psycopg2.extensions import make_dsn, parse_dsn

    params = parse_dsn(libpq_dsn(url))
    password = params.pop("password", None)
    env = {"PGPASSWORD": password} if password else {}
    return make_dsn(**params), env
