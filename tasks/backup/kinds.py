"""Artifact kinds as a registry: what each kind of backed-up file is and how it is handled.

Every artifact in a manifest names its kind (`pg_dump`, `git_bundle`, `tar`, `sqlite_db`, `csv`,
`audit_log`). The kind says its retention class (compliance-class artifacts get Object Lock until
they expire), how its own tool proves it readable (verify), where it comes back in a restore
folder, and the manual steps RECOVERY.md gives for it. Backup (`tasks/backup/targets.py`) only
writes registered kinds; verify and RECOVERY.md look the kind up here; restore looks up its
restorer in `tasks/restore/restorers.py` (RESTORERS, keyed by these names). A kind a manifest
names but this registry does not know is an `UnknownArtifactKind` naming the artifact.
"""

from __future__ import annotations

import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tasks.backup.audit import check_audit_export
from tasks.backup.encryption import SUFFIX
from tasks.backup.git import bundle_refs, verify_bundle
from tasks.backup.manifest import ArtifactEntry, ManifestError
from tasks.backup.postgres import list_archive, unpack_directory_dump
from tasks.tool_output import tool_error

COMPLIANCE = "compliance"    # kept for the regulatory period, under S3 Object Lock where the bucket has it
OPERATIONAL = "operational"  # kept for its retention period, deletable by retention
RETENTION_CLASSES = (COMPLIANCE, OPERATIONAL)

Verifier = Callable[[Path, ArtifactEntry], list[str]]  # the plain file's problems, [] when it reads


class UnknownArtifactKind(ManifestError):
    """A manifest names an artifact kind no handler is registered for."""


@dataclass(frozen=True)
class ArtifactKind:
    name: str
    description: str
    retention: str                                # COMPLIANCE or OPERATIONAL
    verify: Verifier                              # its own tool reads it (pg_restore, git, SQLite, tar)
    place: Callable[[ArtifactEntry], Path | None]  # where it comes back in a restore folder; None: a database
    recovery_steps: Callable[[ArtifactEntry, str, str], str]  # (artifact, plain path, name) -> RECOVERY.md commands
    whole_database: bool = False                  # a copy of a whole database (db-maintenance's pre-flight backup)

    @property
    def restores_into_database(self) -> bool:
        return self.place is _into_database


# -- verifiers: the artifact's own tool reads it -------------------------------------------------
def _read_pg_dump(local: Path, entry: ArtifactEntry) -> list[str]:
    if entry.details.get("format") == "directory":  # a tar of a parallel directory-format dump
        with tempfile.TemporaryDirectory(prefix="tradeops-verify-") as tmp:
            listing = list_archive(unpack_directory_dump(local, Path(tmp), toc_only=True))
    else:
        listing = list_archive(local)
    if listing.returncode != 0:
        return [f"pg_restore --list cannot read {entry.path}: {tool_error(listing.stderr)}"]
    return []


def _read_git_bundle(local: Path, entry: ArtifactEntry) -> list[str]:
    verify_bundle(local)
    if bundle_refs(local) != entry.details.get("refs", {}):
        return [f"{entry.path}: refs in the bundle differ from the manifest"]
    return []


def _read_sqlite(local: Path, entry: ArtifactEntry) -> list[str]:
    with sqlite3.connect(f"file:{local}?mode=ro", uri=True) as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            return [f"{entry.path} fails PRAGMA integrity_check"]
    return []


def _read_audit_log(local: Path, entry: ArtifactEntry) -> list[str]:
    if check_audit_export(local)["head"] != entry.details.get("head"):
        return [f"{entry.path}: the chain head differs from the manifest"]
    return []


def _read_tar(local: Path, entry: ArtifactEntry) -> list[str]:
    with tarfile.open(local, "r:gz") as tar:
        for member in tar:
            if member.isfile():
                tar.extractfile(member).read()
    return []


def _checksum_only(local: Path, entry: ArtifactEntry) -> list[str]:
    return []  # a CSV export: its SHA-256 is the check


# -- where each comes back in a restore folder ---------------------------------------------------
def _into_database(entry: ArtifactEntry) -> Path | None:
    return None


def _git_place(entry: ArtifactEntry) -> Path:
    return Path("git") / f"{entry.target.split(':', 1)[-1]}.git"


def _files_place(entry: ArtifactEntry) -> Path:
    return Path("files") / entry.target.replace(":", "-")


def _same_place(entry: ArtifactEntry) -> Path:
    return Path(entry.path).parent / Path(entry.path).name.removesuffix(SUFFIX)


# -- RECOVERY.md: the commands that bring it back by hand ----------------------------------------
def _pg_dump_steps(artifact: ArtifactEntry, path: str, name: str) -> str:
    if artifact.details.get("format") == "directory":
        jobs = artifact.details.get("jobs", 2)
        body = (f"mkdir {name}.d && tar -xf {path} -C {name}.d\ncreatedb {name}_restored\n"
                f"pg_restore --no-owner --jobs={jobs} --dbname={name}_restored {name}.d\n")
    else:
        body = f"createdb {name}_restored\npg_restore --no-owner --dbname={name}_restored {path}\n"
    counts = artifact.details.get("row_counts", {})
    table = "\n".join(f"| {t} | {n:,} |" for t, n in counts.items())
    return (body + "```\n\nA good restore has these row counts "
            f"(`SELECT count(*) FROM ONLY <table>`; partitioned tables: all partitions):\n\n"
            "| table | rows |\n|---|---|\n" + table)


def _git_bundle_steps(artifact: ArtifactEntry, path: str, name: str) -> str:
    refs = artifact.details.get("refs", {})
    return (f"git clone --mirror {path} {name}.git\ngit -C {name}.git fsck --full\n"
            f"git -C {name}.git for-each-ref --format='%(objectname) %(refname)'\n```\n\n"
            "Expected refs:\n\n| ref | commit |\n|---|---|\n"
            + "\n".join(f"| {ref} | {sha} |" for ref, sha in refs.items()))


def _tar_steps(artifact: ArtifactEntry, path: str, name: str) -> str:
    return f"mkdir -p restored/{name} && tar -xzf {path} -C restored/{name}\n```"


def _sqlite_steps(artifact: ArtifactEntry, path: str, name: str) -> str:
    return f"sqlite3 {path} 'PRAGMA integrity_check'   # then copy it where the platform expects it\n```"


def _csv_steps(artifact: ArtifactEntry, path: str, name: str) -> str:
    return f"head -3 {path}   # the runbook's export of active experiments\n```"


def _audit_log_steps(artifact: ArtifactEntry, path: str, name: str) -> str:
    return f"wc -l {path}   # JSON lines; each entry carries the SHA-256 of the one before\n```"


PG_DUMP = "pg_dump"
GIT_BUNDLE = "git_bundle"
TAR = "tar"
SQLITE_DB = "sqlite_db"
CSV = "csv"
AUDIT_LOG = "audit_log"

KINDS: dict[str, ArtifactKind] = {kind.name: kind for kind in (
    ArtifactKind(PG_DUMP, "a PostgreSQL dump (custom format, or a tar of a parallel directory dump)",
                 COMPLIANCE, _read_pg_dump, _into_database, _pg_dump_steps, whole_database=True),
    ArtifactKind(GIT_BUNDLE, "a git bundle of every ref of a repository",
                 OPERATIONAL, _read_git_bundle, _git_place, _git_bundle_steps),
    ArtifactKind(TAR, "a gzipped tar of files (configuration, certificates)",
                 OPERATIONAL, _read_tar, _files_place, _tar_steps),
    ArtifactKind(SQLITE_DB, "a SQLite database copied with the online backup API",
                 COMPLIANCE, _read_sqlite, _same_place, _sqlite_steps, whole_database=True),
    ArtifactKind(CSV, "the runbook's CSV export of active experiments",
                 COMPLIANCE, _checksum_only, _same_place, _csv_steps),
    ArtifactKind(AUDIT_LOG, "the audit trail as hash-chained JSON lines",
                 COMPLIANCE, _read_audit_log, _same_place, _audit_log_steps),
)}


def kind_of(entry: ArtifactEntry) -> ArtifactKind:
    """The registered kind of a manifest's artifact; UnknownArtifactKind naming it otherwise."""
    return kind_named(entry.kind, entry.path)


def kind_named(name: str, artifact: str | None = None) -> ArtifactKind:
    try:
        return KINDS[name]
    except KeyError:
        what = f"artifact {artifact}" if artifact else "an artifact"
        raise UnknownArtifactKind(f"{what} has the unknown kind {name!r}; known kinds: "
                                  f"{', '.join(sorted(KINDS))} (a manifest from a newer tradeops, or edited by hand?)") \
            from None


def kinds_of_class(retention: str) -> frozenset[str]:
    return frozenset(name for name, kind in KINDS.items() if kind.retention == retention)


WHOLE_DATABASE_KINDS = frozenset(name for name, kind in KINDS.items() if kind.whole_database)  # pg_dump, sqlite_db
