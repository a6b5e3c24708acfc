"""Restore one backed-up target (all its artifacts) and check it, timing each phase for RTO."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psycopg2

from tasks.backup.audit import check_audit_export
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import BackupError, sqlite_row_counts
from tasks.files import atomic_copy
from tasks.restore.compare import differences
from tasks.restore.fetch import RestoreError, opened
from tasks.restore.files import check_files, restore_archive
from tasks.restore.postgres import check_database, restore_dump
from tasks.restore.repositories import check_repository, restore_bundle


@dataclass
class Destination:
    """Where a target comes back: a database (PostgreSQL targets) and a directory (the rest)."""
    directory: Path
    database_url: str | None = None
    probe_query: str | None = None


@dataclass
class TargetOutcome:
    target: str
    problems: list[str] = field(default_factory=list)
    fetch_seconds: float = 0.0
    restore_seconds: float = 0.0
    check_seconds: float = 0.0
    bytes: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def rto_seconds(self) -> float:
        return self.fetch_seconds + self.restore_seconds + self.check_seconds

    def as_dict(self) -> dict:
        return {"target": self.target, "passed": self.passed, "problems": self.problems,
                "rto_seconds": round(self.rto_seconds, 3), "fetch_seconds": round(self.fetch_seconds, 3),
                "restore_seconds": round(self.restore_seconds, 3), "check_seconds": round(self.check_seconds, 3),
                "bytes": self.bytes}


def restore_target(target: str, entries: list[ArtifactEntry], fetch: Callable[[ArtifactEntry], Path],
                   destination: Destination, key_block: str | None, scratch: Path) -> TargetOutcome:
    """Fetch (checksums checked), restore and check every artifact of `target`; never raises for
    a target-level problem: the outcome lists them."""
    outcome = TargetOutcome(target)
    try:
        started = time.perf_counter()
        files = {}
        for entry in entries:
            files[entry.path] = opened(fetch(entry), entry, key_block, scratch)
            outcome.bytes += entry.size
        outcome.fetch_seconds = time.perf_counter() - started
        for entry in entries:
            started = time.perf_counter()
            check = _restore(entry, files[entry.path], destination, scratch)
            outcome.restore_seconds += time.perf_counter() - started
            started = time.perf_counter()
            outcome.problems += check()
            outcome.check_seconds += time.perf_counter() - started
    except (RestoreError, BackupError, OSError, psycopg2.Error, sqlite3.Error) as exc:
        reason = str(exc).strip().splitlines()[0] if isinstance(exc, psycopg2.Error) else str(exc)
        outcome.problems.append(reason if reason.startswith(target) else f"{target}: {reason}")
    except Exception as exc:  # noqa: BLE001 - S3 unreachable or refusing, a key that will not load
        outcome.problems.append(f"{target}: {type(exc).__name__}: {exc}")
    return outcome


def _restore(entry: ArtifactEntry, path: Path, destination: Destination, scratch: Path) -> Callable[[], list[str]]:
    """Restore one artifact; returns the check to run on what came back."""
    name = entry.target.split(":", 1)[-1]
    if entry.kind == "pg_dump":
        toc = restore_dump(path, entry, destination.database_url, scratch)
        return lambda: check_database(destination.database_url, entry, toc, destination.probe_query)
    if entry.kind == "git_bundle":
        repo = destination.directory / "git" / f"{name}.git"
        restore_bundle(path, entry, repo)
        return lambda: check_repository(repo, entry)
    if entry.kind == "tar":
        folder = destination.directory / "files" / entry.target.replace(":", "-")
        restore_archive(path, entry, folder)
        return lambda: check_files(folder, entry)
    copy = destination.directory / Path(entry.path).parent / path.name
    atomic_copy(path, copy)
    if entry.kind == "sqlite_db":
        return lambda: _check_sqlite(copy, entry)
    if entry.kind == "audit_log":
        return lambda: _check_audit(copy, entry)
    return lambda: []  # csv: its SHA-256 was checked when fetched


def _check_sqlite(path: Path, entry: ArtifactEntry) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            return [f"{entry.target}: PRAGMA integrity_check fails"]
        counts = sqlite_row_counts(conn)
    problems = differences(counts, entry.details.get("row_counts", {}), "table ", lambda table, rows, expected: None
                           if rows == expected else f"{table}: {rows:,} rows, the manifest says {expected:,}")
    return [f"{entry.target}: {p}" for p in problems]


def _check_audit(path: Path, entry: ArtifactEntry) -> list[str]:
    head = check_audit_export(path)["head"]
    if head != entry.details.get("head"):
        return [f"{entry.target}: the audit chain head differs from the manifest"]
    return []
