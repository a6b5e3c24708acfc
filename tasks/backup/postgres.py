"""PostgreSQL backups: a snapshot-consistent `pg_dump`, per-table row counts from the same
snapshot, and the runbook's CSV export of active experiments (runbook 000 "Experiment Data Backup").

Format: custom (`-Fc`, one file) unless a parallel dump pays (see `dump_jobs`); then directory
format with `-j N` (PostgreSQL 15 dumps in parallel only in that format), packed into one
uncompressed tar (its members are already gzip-compressed) so the set still holds one file.
The dump is written under a temporary name, read back with `pg_restore --list` (a truncated
archive fails there), fsynced and only then renamed into the set.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path

import psycopg2
from psycopg2 import sql

from tasks.databases import libpq_command_env, libpq_dsn, sqlite_path
from tradeops.files import atomic_output, publish, sha256_file, temporary_name
from tasks.tool_output import tool_error

# Every user table with its partitioned parent (NULL if none) and its on-disk size; a parent's
# row count is the sum of its leaves', so no row is counted twice.
USER_TABLES = """
SELECT n.nspname, c.relname, c.relkind, parent.nspname, parent.relname, pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (  -- a partition has one partitioned parent; plain inheritance parents do not count
    SELECT pn.nspname, p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p'
    JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid) parent ON true
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2
"""
# When a parallel directory-format dump pays, as data (bench/backup_postgres.py measured it:
# 1.5 GB sandbox, 2 cores: -Fd -j 2 took 0.59x the time of -Fc). Work splits per table, so
# the useful number of jobs is bounded by how many tables the size of the largest fit in the whole.
PARALLEL_DUMP = {"min_bytes": 256 * 2**20, "max_jobs": 4}
ACTIVE_EXPERIMENTS = ("COPY (SELECT * FROM experiments WHERE status = 'active' ORDER BY created_at DESC) "
                      "TO STDOUT WITH CSV HEADER")


class BackupError(Exception):
    """A target could not be backed up; the message says which and why."""


def dump_jobs(table_bytes: list[int], cpus: int, requested: int | None = None) -> int:
    """Parallel pg_dump workers for a database whose tables have these sizes; 1 means one
    custom-format file. `requested` (the target's `dump_jobs`) overrides the rule."""
    if requested is not None:
        return max(1, requested)
    total, largest = sum(table_bytes), max(table_bytes, default=0)
    if total < PARALLEL_DUMP["min_bytes"] or largest == 0:
        return 1
    jobs = min(cpus, PARALLEL_DUMP["max_jobs"], total // largest)
    return jobs if jobs >= 2 else 1


def dump_postgres(url: str, dump_path: Path, csv_path: Path | None = None, jobs: int | None = None) -> dict:
    """Dump `url` to `dump_path` (custom format, or a tar of a parallel directory-format dump);
    returns row counts and content checksums per table, whether the CSV was written, format, jobs."""
    dump_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(dump_path)
    dsn, secret_env = libpq_command_env(url)
    try:
        conn = psycopg2.connect(libpq_dsn(url), connect_timeout=10, application_name="tradeops-backup")
    except psycopg2.OperationalError as exc:
        raise BackupError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from None
    workdir = None
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            cur.execute(USER_TABLES)
            tables = cur.fetchall()
            workers = dump_jobs([row[5] for row in tables if row[2] == "r"], _cpus(), jobs)
            if workers > 1:
                workdir = Path(tempfile.mkdtemp(prefix=f".{dump_path.name}.", dir=dump_path.parent))
                output, format_args = workdir / "dump", ["--format=directory", f"--jobs={workers}"]
            else:
                output, format_args = tmp, ["--format=custom"]
            dump = subprocess.Popen(
                ["pg_dump", *format_args, f"--snapshot={snapshot}", "--no-password",
                 f"--file={output}", f"--dbname={dsn}"],
                env={**os.environ, **secret_env}, stderr=subprocess.PIPE, text=True)
            try:
                row_counts, checksums = _table_facts(cur, tables)  # same snapshot, while pg_dump runs
                has_csv = csv_path is not None and _export_active_experiments(cur, csv_path)
            except BaseException:
                dump.kill()  # report now, not after a dump nobody will keep
                raise
            finally:
                _, stderr = dump.communicate()
        if dump.returncode != 0:
            raise BackupError(f"pg_dump failed (exit {dump.returncode}): {tool_error(stderr)}")
        _check_archive(output)
        if workdir is not None:
            _pack_directory(output, tmp)
        publish(tmp, dump_path)
    except psycopg2.Error as exc:
        raise BackupError(f"database error during backup: {str(exc).strip().splitlines()[0]}") from None
    finally:
        conn.close()
        tmp.unlink(missing_ok=True)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"row_counts": row_counts, "table_checksums": checksums, "checksum": CONTENT_CHECKSUM,
            "active_experiments_csv": has_csv, "format": "directory" if workers > 1 else "custom", "jobs": workers}


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _pack_directory(directory: Path, tar_path: Path) -> None:
    """One uncompressed tar of a directory-format dump; members at the top level (toc.dat first)."""
    with open(tar_path, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in sorted(directory.iterdir(), key=lambda p: (p.name != "toc.dat", p.name)):
            tar.add(member, arcname=member.name, recursive=False)


def unpack_directory_dump(tar_path: Path, into: Path, toc_only: bool = False) -> Path:
    """The directory-format dump inside `tar_path`, extracted into `into` (for pg_restore);
    `toc_only`: just its table of contents, all `pg_restore --list` reads."""
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tarfile.open(tar_path, "r:") as tar:
        try:
            members = [tar.getmember("toc.dat")] if toc_only else None
        except KeyError:
            raise BackupError(f"{tar_path.name} holds no toc.dat: not a directory-format dump") from None
        tar.extractall(into, members=members, filter="data")
    return into


# A table's content checksum: the sum of a 64-bit hash of every row's text form. A sum does not
# depend on row order (a restore returns rows in any order) and adds up over partitions. Text
# forms of dates, floats and bytea depend on session settings, so both sides pin them.
CONTENT_CHECKSUM = "sum(hashtextextended(row::text, 0))"
TEXT_SETTINGS = {"DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "TimeZone": "UTC",
                 "extra_float_digits": "1", "bytea_output": "hex"}
ROW_ALIAS = "tradeops_row_"  # the whole-row alias; a column of this name would shadow it


def _table_facts(cur, tables: list[tuple]) -> tuple[dict[str, int], dict[str, str]]:
    """Rows and content checksum per table as pg_dump sees them (`ONLY`: inheritance children
    are their own tables); a partitioned table gets the sums of its leaves, at any depth. The DR
    drill checks a restore with this same function, so both sides count alike."""
    # one core for counting: pg_dump and its server backend need the others
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    for name, value in TEXT_SETTINGS.items():
        cur.execute("SELECT set_config(%s, %s, true)", (name, value))
    parent = {f"{s}.{t}": f"{ps}.{p}" if p else None for s, t, _, ps, p, _ in tables}
    counts, sums = dict.fromkeys(parent, 0), dict.fromkeys(parent, 0)
    for schema, table, relkind, *_ in tables:
        if relkind == "p":
            continue
        cur.execute(sql.SQL("SELECT count(*), coalesce(sum(hashtextextended({row}::text, 0)), 0)::text "
                            "FROM ONLY {table} AS {row}").format(row=sql.Identifier(ROW_ALIAS),
                                                                  table=sql.Identifier(schema, table)))
        rows, checksum = cur.fetchone()
        name = f"{schema}.{table}"
        while name is not None:
            counts[name] += rows
            sums[name] += int(checksum)
            name = parent.get(name)
    return counts, {name: str(total) for name, total in sums.items()}


def table_facts(cur) -> tuple[dict[str, int], dict[str, str]]:
    """Row counts and content checksums of every user table of the connected database."""
    cur.execute(USER_TABLES)
    return _table_facts(cur, cur.fetchall())


def _export_active_experiments(cur, csv_path: Path) -> bool:
    cur.execute("SELECT to_regclass('experiments') IS NOT NULL")
    if not cur.fetchone()[0]:
        return False
    with atomic_output(csv_path) as handle:
        cur.copy_expert(ACTIVE_EXPERIMENTS, handle)
    return True


def _check_archive(path: Path) -> None:
    """A zero-byte or truncated archive is never published."""
    toc = path / "toc.dat" if path.is_dir() else path
    if not toc.exists() or toc.stat().st_size == 0:
        raise BackupError("pg_dump wrote an empty archive")
    listing = list_archive(path)
    if listing.returncode != 0:
        raise BackupError(f"the archive does not read back: {tool_error(listing.stderr)}")


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
            counts = sqlite_row_counts(check)
        publish(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"row_counts": counts}


def sqlite_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table of a SQLite database, as `main.<table>`; restores are checked with it too."""
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")]
    quoted = {t: '"' + t.replace('"', '""') + '"' for t in tables}
    return {f"main.{t}": conn.execute(f"SELECT count(*) FROM {quoted[t]}").fetchone()[0] for t in tables}


def artifact_facts(path: Path) -> tuple[str, int]:
    return sha256_file(path), path.stat().st_size
