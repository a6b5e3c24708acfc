"""Back up one target into a set folder; each returns the manifest entries of what it wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tasks.backup.archives import last_day, tar_paths
from tasks.backup.audit import export_audit_trail
from tasks.backup.git import bundle_repository, repository_refs, reuse_bundle
from tasks.backup.kinds import AUDIT_LOG, CSV, GIT_BUNDLE, PG_DUMP, SQLITE_DB, TAR, kind_named
from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import artifact_facts, backup_sqlite, dump_postgres
from tasks.databases import database_name, is_sqlite
from tradeops.store import BackupArtifact


def _entry(target: str, kind: str, set_dir: Path, path: Path, **extra) -> ArtifactEntry:
    sha256, size = artifact_facts(path)
    return ArtifactEntry(target=target, kind=kind_named(kind).name, path=str(path.relative_to(set_dir)), sha256=sha256,
                         size=size, **extra)


def backup_database(target: str, url: str, set_dir: Path, dump_jobs: int | None = None) -> list[ArtifactEntry]:
    name = target.split(":", 1)[-1]
    if is_sqlite(url):
        path = set_dir / "db" / f"{name}.sqlite"
        return [_entry(target, SQLITE_DB, set_dir, path, details=backup_sqlite(url, path))]
    staged, csv = set_dir / "db" / f"{name}.dump", set_dir / "db" / f"{name}-active_experiments.csv"
    facts = dump_postgres(url, staged, csv, jobs=dump_jobs)
    dump = staged
    if facts["format"] == "directory":  # a tar of the directory-format dump: say so in its name
        dump = staged.with_name(f"{name}.dump.tar")
        os.replace(staged, dump)
    details = {key: facts[key] for key in ("row_counts", "table_checksums", "checksum", "format", "jobs")}
    entries = [_entry(target, PG_DUMP, set_dir, dump, details=details)]
    if facts["active_experiments_csv"]:
        entries.append(_entry(target, CSV, set_dir, csv))
    return entries


def backup_repository(target: str, repo: Path, set_dir: Path,
                      previous: BackupArtifact | None) -> list[ArtifactEntry]:
    refs = repository_refs(repo)
    path = set_dir / "git" / f"{repo.name}.bundle"
    earlier = json.loads(previous.details) if previous is not None else {}
    if earlier.get("refs") == refs and Path(previous.path).is_file():
        linked = path.with_name(Path(previous.path).name)  # keeps `.enc` when the earlier one is sealed
        reuse_bundle(Path(previous.path), linked)
        return [_entry(target, GIT_BUNDLE, set_dir, linked, reused_from=previous.set_id,
                       offsite_key=previous.offsite_key, details=earlier)]
    bundle_repository(repo, path)
    return [_entry(target, GIT_BUNDLE, set_dir, path, details={"refs": refs, "repository": str(repo)})]


def archive_files(target: str, paths: list[str], set_dir: Path, last_day_only: bool = False,
                  pattern: str = "*") -> list[ArtifactEntry]:
    name = target.replace(":", "-")
    path = set_dir / "files" / f"{name}.tar.gz"
    roots = [Path(p) for p in paths]
    facts = tar_paths(roots, path, newer_than=last_day() if last_day_only else None, pattern=pattern)
    return [_entry(target, TAR, set_dir, path, details=facts)]


def export_audit(target: str, store_url: str, set_dir: Path) -> list[ArtifactEntry]:
    path = set_dir / "audit" / "audit-trail.jsonl"
    return [_entry(target, AUDIT_LOG, set_dir, path, details=export_audit_trail(store_url, path))]


def backup_replaced_database(target: str, url: str, set_dir: Path) -> list[ArtifactEntry]:
    """An emergency backup: the database a restore is about to replace, as one custom-format dump
    (restorable with plain pg_restore, as RECOVERY.md says), with its row counts and checksums."""
    name = database_name(url)
    path = set_dir / "db" / f"{name}.dump"
    facts = dump_postgres(url, path, jobs=1)
    details = {key: facts[key] for key in ("row_counts", "table_checksums", "checksum", "format", "jobs")}
    return [_entry(target, PG_DUMP, set_dir, path, details=details | {"database": name})]


def archive_replaced_paths(target: str, paths: list[Path], set_dir: Path) -> list[ArtifactEntry]:
    """An emergency backup: the files and folders a restore is about to replace."""
    path = set_dir / "files" / f"{target.replace(':', '-')}.tar.gz"
    facts = tar_paths(paths, path)
    return [_entry(target, TAR, set_dir, path, details=facts | {"replaced": [str(p) for p in paths]})]
