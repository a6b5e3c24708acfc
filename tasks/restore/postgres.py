"""Restore a PostgreSQL dump into a database of its own and prove it whole: row counts and
content checksums per table equal the manifest's, every index, constraint and materialized view
in the dump exists, and the target's probe query answers."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
from psycopg2 import sql

from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import list_archive, table_facts, unpack_directory_dump
from tasks.databases import connect, database_name, libpq_command_env, libpq_dsn, scalar
from tasks.restore.compare import differences
from tasks.restore.fetch import RestoreError
from tasks.tool_output import tool_error

MAINTENANCE_DB = "postgres"
# `pg_restore --list` lines: "<id>; <tableoid> <oid> <TYPE> <schema> <name...> <owner>"
TOC_LINE = re.compile(r"^\d+; \d+ \d+ (INDEX(?! ATTACH)|CONSTRAINT|FK CONSTRAINT|MATERIALIZED VIEW DATA|MATERIALIZED VIEW) "
                      r"(\S+) (.+) (\S+)$")
CATALOG_CHECKS = {
    "INDEX": "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
    "CONSTRAINT": ("SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                   "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %s AND t.relname = %s "
                   "AND c.conname = %s"),  # a NOT VALID constraint comes back NOT VALID, as dumped
    "MATERIALIZED VIEW": "SELECT 1 FROM pg_matviews WHERE schemaname = %s AND matviewname = %s",
    "MATERIALIZED VIEW DATA": "SELECT 1 FROM pg_matviews WHERE schemaname = %s AND matviewname = %s AND ispopulated",
}


def database_url(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    return urlparse(libpq_dsn(url))._replace(path=f"/{name}").geturl()


def admin_connection(url: str):
    """An autocommit connection to the server's maintenance database (CREATE/DROP DATABASE)."""
    return connect(database_url(url, MAINTENANCE_DB))


def database_tables(url: str, name: str) -> int | None:
    """None when the database does not exist, else how many user tables it holds."""
    with admin_connection(url) as conn:
        if scalar(conn, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)) is None:
            return None
    with connect(database_url(url, name)) as conn:
        return scalar(conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relkind IN ('r', 'p', 'v', 'm') "
                            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')")


def create_database(url: str, name: str) -> None:
    with admin_connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str) -> None:
    with admin_connection(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def databases_named(url: str, prefix: str) -> list[str]:
    with admin_connection(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
                    (prefix.replace("_", r"\_") + "%",))
        return [row[0] for row in cur.fetchall()]


def restore_dump(archive: Path, entry: ArtifactEntry, url: str, scratch: Path) -> str:
    """pg_restore into the (empty) database at `url`; stops at the first error. Returns the
    archive's table of contents for the checks that follow. A directory-format dump is unpacked
    under `scratch` (private to this restore), never next to the archive."""
    target = entry.target
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="restore-", dir=scratch) as tmp:
        jobs = []
        if entry.details.get("format") == "directory":
            archive = unpack_directory_dump(archive, Path(tmp) / "dump")
            jobs = [f"--jobs={max(2, int(entry.details.get('jobs', 2)))}"]
        listing = list_archive(archive)
        if listing.returncode != 0:
            raise RestoreError(f"{target}: pg_restore cannot read {entry.path}: {tool_error(listing.stderr)}")
        dsn, secret_env = libpq_command_env(url)
        done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--no-password", *jobs,
                               f"--dbname={dsn}", str(archive)],
                              env={**os.environ, **secret_env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RestoreError(f"{target}: pg_restore failed (exit {done.returncode}): {tool_error(done.stderr)}")
    return listing.stdout


def check_database(url: str, entry: ArtifactEntry, toc: str, probe_query: str | None) -> list[str]:
    """Everything that differs between the restored database and what was backed up."""
    problems: list[str] = []
    with connect(url, autocommit=False) as conn, conn.cursor() as cur:  # one transaction: SET LOCAL
        counts, checksums = table_facts(cur)
        expected_sums = entry.details.get("table_checksums", {})

        def changed(table: str, rows: int, expected: int) -> str | None:
            if rows != expected:
                return f"{table}: {rows:,} rows, the manifest says {expected:,}"
            if table in expected_sums and checksums[table] != expected_sums[table]:
                return (f"{table}: content checksum {checksums[table]} differs from the manifest's "
                        f"{expected_sums[table]} (same row count, changed rows)")
            return None

        problems += differences(counts, entry.details.get("row_counts", {}), "table ", changed)
        if "table_checksums" not in entry.details:
            problems.append("the manifest holds no table checksums (a set made before they were recorded)")
        conn.rollback()
        problems += _missing_objects(cur, toc)
        if probe_query:
            try:
                cur.execute(probe_query)
                cur.fetchall()
            except psycopg2.Error as exc:
                problems.append(f"probe query failed: {str(exc).strip().splitlines()[0]}")
    return [f"{entry.target}: {p}" for p in problems]


def _missing_objects(cur, toc: str) -> list[str]:
    missing = []
    for line in toc.splitlines():
        match = TOC_LINE.match(line)
        if not match:
            continue
        kind, schema, rest, _owner = match.groups()
        params = (schema, *rest.split(" ", 1)) if kind.endswith("CONSTRAINT") else (schema, rest)
        cur.execute(CATALOG_CHECKS["CONSTRAINT" if kind.endswith("CONSTRAINT") else kind], params)
        if cur.fetchone() is None:
            missing.append(f"{kind.lower()} {'.'.join(params)} is missing after the restore")
    return missing
