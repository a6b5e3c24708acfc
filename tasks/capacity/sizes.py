"""What grows, measured: each size is one `SizeSample` row in the ops store.

Recorded by health-check and daily/weekly backup runs (`record_sizes`). A measurement that cannot
be taken (a database down, a path gone) is left out with a warning: the health check reports the
database itself, and a size missing from one run only thins the series.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from sqlmodel import select

from tasks.databases import connect, is_sqlite, sqlite_path
from tradeops.store.engine import session_for
from tradeops.store.models import BackupArtifact, BackupSet, SizeSample
from tradeops.store.records import current_flow_run_id

LARGEST_TABLES = 5  # per database: the tables runbook 002 names are its largest ones

KINDS = ("disk", "database", "table", "repository", "backup_set")

# Partitioned tables count their partitions; partitions themselves are not listed again.
PG_LARGEST_TABLES = """
SELECT n.nspname || '.' || c.relname,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)
            ELSE pg_total_relation_size(c.oid) END AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY bytes DESC, 1
LIMIT %s
"""


@dataclass(frozen=True)
class SizeMeasurement:
    kind: str
    series: str
    size_bytes: int
    capacity_bytes: int | None = None


def database_sizes(target: str, url: str, largest: int = LARGEST_TABLES) -> list[SizeMeasurement]:
    """The database's size and its `largest` tables (SQLite: the file, tables from dbstat when built in)."""
    if is_sqlite(url):
        path = Path(sqlite_path(url))
        sizes = [SizeMeasurement("database", target, path.stat().st_size)]
        with connect(url) as conn:
            try:
                rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name NOT LIKE 'sqlite_%' "
                                    "GROUP BY name ORDER BY 2 DESC, 1 LIMIT ?", (largest,)).fetchall()
            except Exception:  # noqa: BLE001 - SQLite built without dbstat: the file size only
                rows = []
        return sizes + [SizeMeasurement("table", f"{target}/{name}", int(size)) for name, size in rows]
    with connect(url) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT pg_database_size(current_database())")
        sizes = [SizeMeasurement("database", target, int(cursor.fetchone()[0]))]
        cursor.execute(PG_LARGEST_TABLES, (largest,))
        sizes += [SizeMeasurement("table", f"{target}/{name}", int(size)) for name, size in cursor.fetchall()]
        cursor.close()
    return sizes


def disk_size(path: str) -> SizeMeasurement:
    usage = shutil.disk_usage(path)
    return SizeMeasurement("disk", path, usage.used, usage.total)


def directory_bytes(path: Path) -> int:
    """Bytes of every regular file below `path` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except FileNotFoundError:  # removed while walking (a git gc)
                continue
            total += stat.st_size
    return total


def repository_size(target: str, path: Path) -> SizeMeasurement:
    return SizeMeasurement("repository", f"{target}/{path.name}", directory_bytes(path))


def backup_sizes(store_url: str, environment: str) -> list[SizeMeasurement]:
    """Per kind (daily, weekly, emergency): the newest complete set's bytes; and `retained`, every
    artifact retention has not removed yet (what backups occupy)."""
    with session_for(store_url) as session:
        rows = session.exec(
            select(BackupSet.kind, BackupSet.set_id, BackupSet.completed_at, BackupArtifact.size,
                   BackupArtifact.removed_at)
            .join(BackupArtifact, BackupArtifact.set_id == BackupSet.set_id)
            .where(BackupSet.environment == environment, BackupSet.status == "complete")).all()
    newest: dict[str, tuple] = {}
    per_set: dict[str, int] = {}
    retained = 0
    for kind, set_id, completed_at, size, removed_at in rows:
        per_set[set_id] = per_set.get(set_id, 0) + size
        if removed_at is None:
            retained += size
        if kind not in newest or (completed_at, set_id) > newest[kind]:
            newest[kind] = (completed_at, set_id)
    sizes = [SizeMeasurement("backup_set", kind, per_set[set_id]) for kind, (_, set_id) in sorted(newest.items())]
    return sizes + ([SizeMeasurement("backup_set", "retained", retained)] if rows else [])


def measure_environment(env, logger: logging.Logger | logging.LoggerAdapter) -> list[SizeMeasurement]:  # noqa: ANN001
    """Every size of a loaded environment; what fails to measure is logged and left out."""
    measurements: list[SizeMeasurement] = []

    def attempt(what: str, measure) -> None:  # noqa: ANN001
        try:
            found = measure()
        except Exception as exc:  # noqa: BLE001 - one size missing must not stop the run that records it
            logger.warning("size of %s not recorded: %s", what, exc)
            return
        measurements.extend(found if isinstance(found, list) else [found])

    for db in env.block.databases():
        attempt(f"database {db.target}", lambda db=db: database_sizes(db.target, db.url.get_secret_value()))
    for path in env.block.health_disk_paths or [env.block.data_dir]:
        attempt(f"disk {path}", lambda path=path: disk_size(path))
    for repos in env.block.git_sets():
        for repo in repos.repositories():
            attempt(f"repository {repo}", lambda repos=repos, repo=repo: repository_size(repos.target, repo))
    attempt("backup sets", lambda: backup_sizes(env.store_url, env.name))
    return measurements


def save_sizes(store_url: str, environment: str, source: str, measurements: list[SizeMeasurement]) -> int:
    run_id = current_flow_run_id()
    with session_for(store_url) as session:
        session.add_all([SizeSample(flow_run_id=run_id, environment=environment, source=source, kind=m.kind,
                                    series=m.series, size_bytes=m.size_bytes, capacity_bytes=m.capacity_bytes)
                         for m in measurements])
        session.commit()
    return len(measurements)


@task(name="record-sizes")
def record_sizes_task(env, source: str) -> int:  # noqa: ANN001
    """Measure and record every size of a loaded environment at a `source` run; returns how many."""
    return save_sizes(env.store_url, env.name, source, measure_environment(env, get_run_logger()))
