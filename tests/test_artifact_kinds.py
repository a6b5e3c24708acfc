"""The artifact-kind registry: every kind backup writes has a retention class, a verifier, a place
in a restore folder, RECOVERY.md steps and a restorer; a manifest naming a kind nobody registered
is refused with an error naming the artifact and the kind."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import tarfile
from pathlib import Path

import pytest

from tasks.backup import targets as backup_targets
from tasks.backup.catalog import COMPLIANCE_KINDS
from tasks.backup.kinds import (COMPLIANCE, KINDS, RETENTION_CLASSES, WHOLE_DATABASE_KINDS, UnknownArtifactKind,
                                kind_named, kind_of)
from tasks.backup.manifest import ArtifactEntry, Manifest, ManifestError, read_manifest, write_manifest
from tasks.backup.recovery_doc import recovery_markdown
from tasks.backup.verify import verify_artifact
from tasks.restore.restorers import RESTORERS, Destination, restore_artifact, restored_path
from tasks.restore.targets import FetchedTarget, restore_fetched


def _entry(set_dir: Path, path: str, kind: str, target: str = "files:configs", **details) -> ArtifactEntry:
    data = (set_dir / path).read_bytes()
    return ArtifactEntry(target=target, kind=kind, path=path, sha256=hashlib.sha256(data).hexdigest(),
                         size=len(data), details=details)


def _tar(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_every_registered_kind_has_its_handlers():
    assert set(KINDS) == {"pg_dump", "git_bundle", "tar", "sqlite_db", "csv", "audit_log"}
    assert set(RESTORERS) == set(KINDS), "every kind needs a restorer in tasks/restore/restorers.py"
    for name, kind in KINDS.items():
        assert kind.name == name and kind.description
        assert kind.retention in RETENTION_CLASSES
        assert callable(kind.verify) and callable(kind.place) and callable(kind.recovery_steps)
        assert callable(RESTORERS[name])
    # the compliance class (Object Lock) is the runbook's: database dumps, their exports, the audit trail
    assert COMPLIANCE_KINDS == {"pg_dump", "sqlite_db", "csv", "audit_log"}
    assert {n for n, k in KINDS.items() if k.retention == COMPLIANCE} == COMPLIANCE_KINDS
    assert [n for n, k in KINDS.items() if k.restores_into_database] == ["pg_dump"]
    assert WHOLE_DATABASE_KINDS == {"pg_dump", "sqlite_db"}  # what db-maintenance accepts as a fresh backup


def test_backup_writes_only_registered_kinds(tmp_path):
    path = tmp_path / "files" / "a.tar.gz"
    _tar(path, {"a.cfg": b"x=1\n"})
    assert backup_targets._entry("files:a", "tar", tmp_path, path).kind == "tar"
    with pytest.raises(UnknownArtifactKind, match="'zip'"):
        backup_targets._entry("files:a", "zip", tmp_path, path)


def test_places_in_a_restore_folder():
    def entry(kind, target, path):
        return ArtifactEntry(target=target, kind=kind, path=path, sha256="0" * 64, size=1)

    assert restored_path(entry("pg_dump", "db:trading", "db/trading.dump")) is None
    assert restored_path(entry("git_bundle", "git:strategies", "git/strategies.bundle")) == Path("git/strategies.git")
    assert restored_path(entry("tar", "files:configs", "files/configs.tar.gz")) == Path("files/files-configs")
    assert restored_path(entry("sqlite_db", "db:exp", "db/exp.sqlite.enc")) == Path("db/exp.sqlite")


def test_a_tar_verifies_and_restores_through_its_kind(tmp_path):
    set_dir = tmp_path / "set"
    _tar(set_dir / "files" / "configs.tar.gz", {"risk.yaml": b"limit: 5\n", "fees.yaml": b"maker: 0.1\n"})
    entry = _entry(set_dir, "files/configs.tar.gz", "tar")
    assert verify_artifact(set_dir, entry, None) == []

    check = restore_artifact(entry, set_dir / entry.path, Destination(directory=tmp_path / "restored"), tmp_path)
    restored = tmp_path / "restored" / "files" / "files-configs"
    assert (restored / "risk.yaml").read_bytes() == b"limit: 5\n"
    assert (restored / "fees.yaml").read_bytes() == b"maker: 0.1\n"
    assert isinstance(check(), list)


def test_a_damaged_sqlite_copy_fails_its_kinds_verifier(tmp_path):
    set_dir = tmp_path / "set"
    (set_dir / "db").mkdir(parents=True)
    db = set_dir / "db" / "exp.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
    good = _entry(set_dir, "db/exp.sqlite", "sqlite_db", target="db:exp")
    assert verify_artifact(set_dir, good, None) == []
    raw = bytearray(db.read_bytes())
    raw[4096:4200] = b"\xff" * 104  # the table's first page
    db.write_bytes(bytes(raw))
    damaged = _entry(set_dir, "db/exp.sqlite", "sqlite_db", target="db:exp")
    problems = verify_artifact(set_dir, damaged, None)
    assert problems and all("db/exp.sqlite" in p for p in problems)


def test_an_unknown_kind_in_a_manifest_is_a_clear_error(tmp_path):
    set_dir = tmp_path / "set"
    _tar(set_dir / "files" / "configs.tar.gz", {"risk.yaml": b"limit: 5\n"})
    entry = _entry(set_dir, "files/configs.tar.gz", "zip")
    write_manifest(set_dir, Manifest(set_id="s1", environment="sandbox", kind="daily", created_at="2026-12-01T00:00:00+00:00",
                                     flow_run_id=None, artifacts=[entry]))
    manifest, problems = read_manifest(set_dir)
    assert problems == []
    (listed,) = manifest.artifacts

    with pytest.raises(UnknownArtifactKind) as raised:
        kind_of(listed)
    message = str(raised.value)
    assert "files/configs.tar.gz" in message and "'zip'" in message and "tar" in message
    assert isinstance(raised.value, ManifestError)
    with pytest.raises(UnknownArtifactKind, match="'zip'"):
        kind_named("zip")

    # verify names it as the artifact's problem; restore planning and RECOVERY.md refuse it
    assert verify_artifact(set_dir, listed, None) == [message]
    with pytest.raises(UnknownArtifactKind, match="files/configs.tar.gz"):
        restored_path(listed)
    with pytest.raises(UnknownArtifactKind, match="'zip'"):
        recovery_markdown(manifest, set_dir, None, None, None)
    # a restore lists it as the target's problem and restores nothing
    fetched = FetchedTarget("files:configs", files={listed.path: set_dir / listed.path})
    outcome = restore_fetched(fetched, [listed], Destination(directory=tmp_path / "restored"), tmp_path)
    assert not outcome.passed and "'zip'" in outcome.problems[0] and outcome.problems[0].startswith("files:configs")
    assert not (tmp_path / "restored").exists()
