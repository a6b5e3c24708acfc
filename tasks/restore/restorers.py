"""How each artifact kind comes back: its restorer, looked up by the kind's name.

The kinds themselves (retention class, verifier, where each comes back) are registered in
`tasks/backup/kinds.py`; every registered kind has an entry here (tests/test_artifact_kinds.py
holds the two together). A restorer puts the fetched, decrypted file in place and returns the
check to run on what came back; it never raises for an ordinary problem the check can list.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tasks.backup.audit import check_audit_export
from tasks.backup.kinds import AUDIT_LOG, CSV, GIT_BUNDLE, PG_DUMP, SQLITE_DB, TAR, UnknownArtifactKind, kind_of
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import sqlite_row_counts
from tasks.restore.compare import differences
from tasks.restore.files import check_files, restore_archive
from tasks.restore.postgres import check_database, restore_dump
from tasks.restore.repositories import check_repository, restore_bundle
from tradeops.files import atomic_copy

Check = Callable[[], list[str]]


@dataclass
class Destination:
    """Where a target comes back: a database (PostgreSQL targets) and a directory (the rest)."""
    directory: Path
    database_url: str | None = None
    probe_query: str | None = None


Restorer = Callable[[ArtifactEntry, Path, Path | None, Destination, Path], Check]
# (entry, fetched plain file, its place in the destination folder or None, destination, scratch) -> check


def _restore_pg_dump(entry: ArtifactEntry, path: Path, location: Path | None, destination: Destination,
                     scratch: Path) -> Check:
    toc = restore_dump(path, entry, destination.database_url, scratch)
    return lambda: check_database(destination.database_url, entry, toc, destination.probe_query)


def _restore_git_bundle(entry: ArtifactEntry, path: Path, location: Path | None, destination: Destination,
                        scratch: Path) -> Check:
    restore_bundle(path, entry, location)
    return lambda: check_repository(location, entry)


def _restore_tar(entry: ArtifactEntry, path: Path, location: Path | None, destination: Destination,
                 scratch: Path) -> Check:
    restore_archive(path, entry, location)
    return lambda: check_files(location, entry)


def _restore_sqlite(entry: ArtifactEntry, path: Path, location: Path | None, destination: Destination,
                    scratch: Path) -> Check:
    atomic_copy(path, location)
    return lambda: check_sqlite(location, entry)


def _restore_audit_log(entry: ArtifactEntry, path: Path, location: Path | None, destination: Destination,
                       scratch: Path) -> Check:
    atomic_copy(path, location)
    return lambda: check_audit(location, entry)


def _restore_csv(entry: ArtifactEntry, path: Path, location: Path | None, destination: Destination,
                 scratch: Path) -> Check:
    atomic_copy(path, location)
    return lambda: []  # its SHA-256 was checked when fetched


RESTORERS: dict[str, Restorer] = {
    PG_DUMP: _restore_pg_dump,
    GIT_BUNDLE: _restore_git_bundle,
    TAR: _restore_tar,
    SQLITE_DB: _restore_sqlite,
    AUDIT_LOG: _restore_audit_log,
    CSV: _restore_csv,
}


def restored_path(entry: ArtifactEntry) -> Path | None:
    """Where an artifact comes back, relative to the restore folder (None: into a database)."""
    return kind_of(entry).place(entry)


def restore_artifact(entry: ArtifactEntry, path: Path, destination: Destination, scratch: Path) -> Check:
    """Restore one artifact with its kind's restorer; returns the check to run on what came back."""
    kind = kind_of(entry)
    restorer = RESTORERS.get(kind.name)
    if restorer is None:
        raise UnknownArtifactKind(f"artifact {entry.path}: no restorer for the kind {kind.name!r}")
    place = kind.place(entry)
    return restorer(entry, path, None if place is None else destination.directory / place, destination, scratch)


def check_sqlite(path: Path, entry: ArtifactEntry) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            return [f"{entry.target}: PRAGMA integrity_check fails"]
        counts = sqlite_row_counts(conn)
    problems = differences(counts, entry.details.get("row_counts", {}), "table ", lambda table, rows, expected: None
                           if rows == expected else f"{table}: {rows:,} rows, the manifest says {expected:,}")
    return [f"{entry.target}: {p}" for p in problems]


def check_audit(path: Path, entry: ArtifactEntry) -> list[str]:
    head = check_audit_export(path)["head"]
    if head != entry.details.get("head"):
        return [f"{entry.target}: the audit chain head differs from the manifest"]
    return []
