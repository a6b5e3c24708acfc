"""Restore one backed-up target (all its artifacts) and check it, timing each phase for RTO."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psycopg2

from tasks.backup.manifest import ArtifactEntry
from tasks.backup.postgres import BackupError
from tasks.restore.fetch import RestoreError, opened
from tasks.restore.restorers import Destination, restore_artifact

__all__ = ["Destination", "FetchedTarget", "TargetOutcome", "fetch_target", "restore_fetched", "restore_target"]


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


@dataclass
class FetchedTarget:
    """A target's artifacts fetched, checked against the manifest's SHA-256 and decrypted."""
    target: str
    files: dict[str, Path] = field(default_factory=dict)  # manifest path -> plain local file
    seconds: float = 0.0
    bytes: int = 0


def fetch_target(target: str, entries: list[ArtifactEntry], fetch: Callable[[ArtifactEntry], Path],
                 key_block: str | None, scratch: Path) -> FetchedTarget:
    """Every artifact of `target`, checked and decrypted; raises RestoreError naming the first
    that cannot be had."""
    fetched, started = FetchedTarget(target), time.perf_counter()
    for entry in entries:
        fetched.files[entry.path] = opened(fetch(entry), entry, key_block, scratch)
        fetched.bytes += entry.size
    fetched.seconds = time.perf_counter() - started
    return fetched


def restore_fetched(fetched: FetchedTarget, entries: list[ArtifactEntry], destination: Destination,
                    scratch: Path) -> TargetOutcome:
    """Restore and check every fetched artifact of a target into `destination`; never raises
    for a target-level problem: the outcome lists them."""
    outcome = TargetOutcome(fetched.target, fetch_seconds=fetched.seconds, bytes=fetched.bytes)
    with _problems_named(outcome):
        for entry in entries:
            started = time.perf_counter()
            check = restore_artifact(entry, fetched.files[entry.path], destination, scratch)
            outcome.restore_seconds += time.perf_counter() - started
            started = time.perf_counter()
            outcome.problems += check()
            outcome.check_seconds += time.perf_counter() - started
    return outcome


def restore_target(target: str, entries: list[ArtifactEntry], fetch: Callable[[ArtifactEntry], Path],
                   destination: Destination, key_block: str | None, scratch: Path) -> TargetOutcome:
    """Fetch (checksums checked), restore and check every artifact of `target` (the DR drill)."""
    outcome = TargetOutcome(target)
    with _problems_named(outcome):
        fetched = fetch_target(target, entries, fetch, key_block, scratch)
    return outcome if outcome.problems else restore_fetched(fetched, entries, destination, scratch)


@contextmanager
def _problems_named(outcome: TargetOutcome) -> Iterator[None]:
    """A target-level failure becomes one problem of the outcome, prefixed with the target."""
    target = outcome.target
    try:
        yield
    except (RestoreError, BackupError, OSError, psycopg2.Error, sqlite3.Error) as exc:
        reason = str(exc).strip().splitlines()[0] if isinstance(exc, psycopg2.Error) else str(exc)
        outcome.problems.append(reason if reason.startswith(target) else f"{target}: {reason}")
    except Exception as exc:  # noqa: BLE001 - S3 unreachable or refusing, a key that will not load
        outcome.problems.append(f"{target}: {type(exc).__name__}: {exc}")
