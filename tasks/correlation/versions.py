"""Every promoted correlation matrix is a commit of one git repository (pygit2, no git binary):
`matrix.json` at HEAD is the live matrix the platform reloads; a rollback commits the matrix of
the version before the live one again, so the history keeps every step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pygit2

from tasks.correlation.matrix import CorrelationMatrix
from tradeops.errors import UsageError
from tradeops.files import atomic_write_text

MATRIX_FILE = "matrix.json"
BRANCH = "refs/heads/main"


@dataclass(frozen=True)
class MatrixVersion:
    commit: str
    message: str
    author: str
    at: datetime
    matrix: CorrelationMatrix
    meta: dict  # window, run, what it restores


def open_matrix_repository(path: Path) -> pygit2.Repository:
    if (path / ".git").exists():
        return pygit2.Repository(str(path))
    path.mkdir(parents=True, exist_ok=True)
    return pygit2.init_repository(str(path), initial_head="main")


def _version(repo: pygit2.Repository, commit: pygit2.Commit) -> MatrixVersion:
    data = json.loads((commit.tree / MATRIX_FILE).data)
    return MatrixVersion(str(commit.id), commit.message.strip(), commit.author.name,
                         datetime.fromtimestamp(commit.author.time, tz=timezone.utc),
                         CorrelationMatrix.from_json(data), data.get("meta", {}))


def history(repo: pygit2.Repository) -> list[MatrixVersion]:
    """Every version, newest first (the live one first)."""
    if repo.head_is_unborn:
        return []
    return [_version(repo, c) for c in repo.walk(repo.head.target, pygit2.enums.SortMode.TOPOLOGICAL)]


def live_version(repo: pygit2.Repository) -> MatrixVersion | None:
    return None if repo.head_is_unborn else _version(repo, repo.head.peel(pygit2.Commit))


def commit_matrix(repo: pygit2.Repository, matrix: CorrelationMatrix, meta: dict, message: str,
                  user: str) -> MatrixVersion:
    """Write matrix.json (whole, then renamed) and commit it on main as `user`."""
    text = json.dumps({**matrix.to_json(), "meta": meta}, indent=1, sort_keys=True) + "\n"
    atomic_write_text(Path(repo.workdir) / MATRIX_FILE, text)
    repo.index.add(MATRIX_FILE)
    repo.index.write()
    tree = repo.index.write_tree()
    signature = pygit2.Signature(user, f"{user}@tradeops")
    parents = [] if repo.head_is_unborn else [repo.head.target]
    oid = repo.create_commit(BRANCH, signature, signature, message, tree, parents)
    return _version(repo, repo.get(oid))


def rollback_matrix(repo: pygit2.Repository, user: str) -> tuple[MatrixVersion, MatrixVersion]:
    """Commit the version before the live one again; returns (was live, now live). When the live
    version is itself a rollback, the one before the version it restored: rolling back twice goes
    two versions back, not to and fro."""
    versions = history(repo)
    if not versions:
        raise UsageError("correlation-matrix rollback: no matrix has been promoted yet")
    live = versions[0]
    origin = live.meta.get("restores", live.commit)
    position = next((i for i, v in enumerate(versions) if v.commit == origin), 0)
    if position + 1 >= len(versions):
        raise UsageError("correlation-matrix rollback: there is no earlier version to go back to")
    previous = versions[position + 1]
    meta = {**previous.meta, "restores": previous.meta.get("restores", previous.commit), "replaces": live.commit}
    restored = commit_matrix(repo, previous.matrix, meta,
                             f"rollback: restore {previous.commit[:12]} (replaces {live.commit[:12]})", user)
    return live, restored
