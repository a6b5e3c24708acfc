"""PostgreSQL backups: a snapshot-consistent `pg_dump -Fc`, per-table row counts from the same
snapshot, and the runbook's CSV export of active experiments (runbook 000 "Experiment Data Backup").

The dump is written under a temporary name, read back with `pg_restore --list` (a truncated
archive fails there), fsynced and only then renamed into the set.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import psycopg2

from tasks.databases import libpq_command_env, libpq_dsn, sqlite_path
from tasks.files import atomic_output, publish, sha256_file, temporary_name

USER_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2
"""
ACTIVE_EXPERIMENTS = ("COPY (SELECT * FROM experiments WHERE status = 'active' ORDER BY created_at DESC) "
                      "TO STDOUT WITH CSV HEADER")


class BackupError(Exception):
    """A target could not be backed up; the message says which and why."""


def dump_postgres(url: str, dump_path: Path, csv_path: Path | None = None) -> dict:
    """Dump `url` to `dump_path`; returns {"row_counts": {...}, "active_experiments_csv": bool}."""
    dump_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(dump_path)
    dsn, secret_env = libpq_command_env(url)
    try:
        conn = psycopg2.connect(libpq_dsn(url), connect_timeout=10, application_name="tradeops-backup")
    except psycopg2.OperationalError as exc:
        raise BackupError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from None
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            dump = subprocess.Popen(
                ["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-password",
                 f"--file={tmp}", f"--dbname={dsn}"],
                env={**os.environ, **secret_env}, stderr=subprocess.PIPE, text=True)
            try:
                row_counts = _row_counts(cur)  # same snapshot, while pg_dump runs
                has_csv = csv_path is not None and _export_active_experiments(cur, csv_path)
            finally:
                _, stderr = dump.communicate()
        if dump.returncode != 0:
            raise BackupError(f"pg_dump failed (exit {dump.returncode}): {stderr.strip()[-500:]}")
        _check_archive(tmp)
        publish(tmp, dump_path)
    except psycopg2.Error as exc:
        raise BackupError(f"database error during backup: {str(exc).strip().splitlines()[0]}") from None
    finally:
        conn.close()
        tmp.unlink(missing_ok=True)
    return {"row_counts": row_counts, "active_experiments_csv": has_csv}


def _row_counts(cur) -> dict[str, int]:
    # one core for counting: pg_dump and its server backend need the others
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    cur.execute(USER_TABLES)
    counts = {}
    for schema, table in cur.fetchall():
        cur.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
        counts[f"{schema}.{table}"] = cur.fetchone()[0]
    return counts


def _export_active_experiments(cur, csv_path: Path) -> bool:
    cur.execute("SELECT to_regclass('experiments') IS NOT NULL")
    if not cur.fetchone()[0]:
        return False
    with atomic_output(csv_path) as handle:
        cur.copy_expert(ACTIVE_EXPERIMENTS, handle)
    return True


def _check_archive(path: Path) -> None:
    """A zero-byte or truncated archive is never published."""
    if not path.exists() or path.stat().st_size == 0:
        raise BackupError("pg_dump wrote an empty archive")
    listing = list_archive(path)
    if listing.returncode != 0:
        raise BackupError(f"the archive does not read back: {listing.stderr.strip()[-300:]}")


def list_archive(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["pg_restore", "--list", str(path)], capture_output=True, text=True)


def backup_sqlite(url: str, out_path: Path) -> dict:
    """SQLite's online backup API into a temporary file, then renamed; row counts per table."""
    source = sqlite_path(url)
    if not Path(source).is_file():
        raise BackupError(f"SQLite database {source} does not exist")
    tmp = temporary_name(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(tmp) as dst:
            src.backup(dst)
        with sqlite3.connect(tmp) as check:
            if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError("the SQLite copy fails PRAGMA integrity_check")
            tables = [r[0] for r in check.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")]
            counts = {f"main.{t}": check.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        publish(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"row_counts": counts}


def artifact_facts(path: Path) -> tuple[str, int]:
    return sha256_file(path), path.stat().st_size
