"""A strategy repository's versions: commit + annotated semver tag, listing, diffs, and the
`production` pointer.

Runbook 000 ("Git Integration Operations") wants every strategy change versioned, audited and
done well under 2 s. Everything here is pygit2 in-process (no `git` subprocess per step), so a
version is one status scan, one tree write, one commit and one tag.

The deployed version is the branch `refs/heads/production`. Promotion and rollback only move
that ref, with a reflog message naming the action and the version; no commit is ever created,
amended or dropped, so every earlier version stays reachable through its tag.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import pygit2
from pygit2.enums import FileStatus, ObjectType

from tradeops.errors import UsageError

PRODUCTION_REF = "refs/heads/production"
BUMPS = ("major", "minor", "patch")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_TAG_IN_MESSAGE = re.compile(r"v\d+\.\d+\.\d+")
PROMOTE_MESSAGE = "tradeops promote {tag}"
ROLLBACK_MESSAGE = "tradeops rollback {current} -> {tag}"


class VersioningError(UsageError):
    """A versioning request that cannot be carried out as asked (exit 2); names the strategy."""


@dataclass(frozen=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        match = _VERSION.match(text.strip())
        return cls(*map(int, match.groups())) if match else None

    def bump(self, part: str) -> SemVer:
        if part == "major":
            return SemVer(self.major + 1, 0, 0)
        if part == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        if part == "patch":
            return SemVer(self.major, self.minor, self.patch + 1)
        raise UsageError(f"--bump {part!r}: expected one of {', '.join(BUMPS)}")

    @property
    def tag(self) -> str:
        return f"v{self}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: str  # added | modified | deleted


@dataclass(frozen=True)
class VersionResult:
    strategy: str
    version: str  # "1.2.3", as runbook 000's audit entries write it
    tag: str  # "v1.2.3"
    commit: str
    branch: str
    changes: tuple[FileChange, ...]
    elapsed_ms: int

    @property
    def changed_files(self) -> list[str]:
        return [c.path for c in self.changes]


@dataclass(frozen=True)
class VersionInfo:
    version: str
    tag: str
    commit: str
    date: datetime
    message: str
    tagger: str | None  # None for a lightweight tag
    in_production: bool


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: str  # added | modified | deleted | ...
    additions: int
    deletions: int
    binary: bool


@dataclass(frozen=True)
class VersionDiff:
    a: str
    b: str
    commit_a: str
    commit_b: str
    files: tuple[FileDiff, ...]
    patch: str

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


@dataclass(frozen=True)
class PointerMove:
    """One move of the production pointer, from the reflog or the audit trail."""

    action: str  # promote | rollback (any move not made by tradeops counts as promote)
    commit: str
    tag: str | None
    user: str | None = None


@dataclass(frozen=True)
class ProductionChange:
    strategy: str
    action: str
    tag: str | None
    commit: str
    previous_tag: str | None
    previous_commit: str | None
    source: str  # where the rollback target came from: "reflog" | "audit trail" | "" (promote)


# -- finding repositories and versions -------------------------------------------------------------

def find_strategy_repository(git_sets: Iterable, strategy: str) -> Path:
    """The repository named `strategy` (its folder name, `.git` suffix optional) in the environment's
    git sets (GitRepositorySet blocks)."""
    known: list[str] = []
    for git_set in git_sets:
        for path in git_set.repositories():
            name = path.name.removesuffix(".git")
            if name == strategy and path.exists():
                return path
            known.append(name)
    listed = ", ".join(sorted(set(known))) or "none"
    raise VersioningError(f"no strategy repository named {strategy!r} in the environment's git sets "
                          f"(known: {listed})")


def open_repository(path: Path | str) -> pygit2.Repository:
    try:
        return pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError) as exc:
        raise VersioningError(f"strategy repository {path}: not a git repository ({exc})") from None


def strategy_name(repo: pygit2.Repository) -> str:
    return Path(repo.workdir or repo.path).name.removesuffix(".git")


def semver_tags(repo: pygit2.Repository) -> dict[SemVer, str]:
    """Every vX.Y.Z tag: version -> full ref name."""
    found = {}
    for name in repo.listall_references():
        if name.startswith("refs/tags/"):
            version = SemVer.parse(name[len("refs/tags/"):])
            if version is not None and name[len("refs/tags/"):].startswith("v"):
                found[version] = name
    return found


def resolve_version(repo: pygit2.Repository, text: str) -> tuple[str, pygit2.Commit]:
    """A version ("1.2.0" or "v1.2.0") -> (tag, commit); unknown versions name the known ones."""
    version = SemVer.parse(text)
    tags = semver_tags(repo)
    if version is None or version not in tags:
        known = ", ".join(str(v) for v in sorted(tags)[-8:]) or "none"
        raise VersioningError(f"strategy {strategy_name(repo)}: no version {text!r} (latest: {known})")
    return version.tag, repo.references[tags[version]].peel(pygit2.Commit)


def resolve_revision(repo: pygit2.Repository, text: str) -> tuple[str, pygit2.Commit]:
    """A version, else any git revision (branch, commit id): diffs may compare against `main`."""
    if SemVer.parse(text) is not None:
        return resolve_version(repo, text)
    try:
        return text, repo.revparse_single(text).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise VersioningError(f"strategy {strategy_name(repo)}: no version or revision {text!r}") from None


# -- working changes and new versions ----------------------------------------------------------------

def working_changes(repo: pygit2.Repository) -> list[FileChange]:
    """Files whose working-copy state differs from HEAD (staged or not; ignored files left out)."""
    if repo.is_bare:
        raise VersioningError(f"strategy {strategy_name(repo)}: bare repository, no working changes to version")
    head_tree = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit).tree
    workdir = Path(repo.workdir)
    changes = []
    for path, flags in sorted(repo.status(untracked_files="all").items()):
        if flags == FileStatus.CURRENT or flags & FileStatus.IGNORED:
            continue
        exists = (workdir / path).is_file() or (workdir / path).is_symlink()
        in_head = head_tree is not None and path in head_tree
        if exists:
            changes.append(FileChange(path, "modified" if in_head else "added"))
        elif in_head:
            changes.append(FileChange(path, "deleted"))
    return changes


def next_version(repo: pygit2.Repository, bump: str) -> SemVer:
    """`bump` applied to the highest existing vX.Y.Z tag (0.0.0 when there is none)."""
    tags = semver_tags(repo)
    return max(tags, default=SemVer(0, 0, 0)).bump(bump)


def create_version(repo: pygit2.Repository, bump: str, message: str, author: pygit2.Signature,
                   version: str | None = None) -> VersionResult:
    """Stage every working change (deletions too), commit on the current branch and tag the commit
    with an annotated vX.Y.Z tag carrying `message`. `version` overrides the bump (it must be new)."""
    started = time.perf_counter()
    name = strategy_name(repo)
    if not message.strip():
        raise VersioningError(f"strategy {name}: a version needs a message (-m)")
    if repo.head_is_detached:
        raise VersioningError(f"strategy {name}: HEAD is detached; check out a branch before versioning")
    if repo.references["HEAD"].target == PRODUCTION_REF:
        raise VersioningError(f"strategy {name}: the working copy is on production, which only promotions move; "
                              "check out a development branch before versioning")
    if version is not None:
        semver = SemVer.parse(version)
        if semver is None:
            raise VersioningError(f"strategy {name}: version {version!r} is not X.Y.Z")
    else:
        semver = next_version(repo, bump)
    if f"refs/tags/{semver.tag}" in repo.references:
        raise VersioningError(f"strategy {name}: tag {semver.tag} exists already")
    changes = working_changes(repo)
    if not changes:
        raise VersioningError(f"strategy {name}: nothing to commit (the working copy matches "
                              f"{repo.head.shorthand if not repo.head_is_unborn else 'an empty branch'})")

    index = repo.index
    for change in changes:
        if change.kind == "deleted":
            index.remove(change.path)
        else:
            index.add(change.path)
    tree = index.write_tree()
    parents = [] if repo.head_is_unborn else [repo.head.target]
    if parents and repo[parents[0]].peel(pygit2.Commit).tree_id == tree:
        index.read(force=True)
        raise VersioningError(f"strategy {name}: nothing to commit (the changes cancel out against HEAD)")
    body = message.strip() + "\n"
    commit = repo.create_commit("HEAD", author, author, body, tree, parents)
    index.write()
    repo.create_tag(semver.tag, commit, ObjectType.COMMIT, author, body)
    branch = repo.head.shorthand
    return VersionResult(name, str(semver), semver.tag, str(commit), branch, tuple(changes), _ms_since(started))


# -- listing and diffing -------------------------------------------------------------------------

def list_versions(repo: pygit2.Repository) -> list[VersionInfo]:
    """Every vX.Y.Z tag, oldest version first, with its date, message, commit and whether the
    production pointer is on it."""
    production = production_commit(repo)
    versions = []
    for semver, ref_name in sorted(semver_tags(repo).items()):
        target = repo[repo.references[ref_name].target]
        commit = target.peel(pygit2.Commit)
        if target.type == ObjectType.TAG:
            signature, message, tagger = target.tagger, target.message, target.tagger.name
        else:
            signature, message, tagger = commit.committer, commit.message, None
        versions.append(VersionInfo(str(semver), semver.tag, str(commit.id), _when(signature), message.strip(),
                                    tagger, str(commit.id) == production))
    return versions


def diff_versions(repo: pygit2.Repository, a: str, b: str) -> VersionDiff:
    """What changed from `a` to `b`: per file +/- line counts (renames show as delete + add, as
    `git diff --no-renames`), and the patch text."""
    label_a, commit_a = resolve_revision(repo, a)
    label_b, commit_b = resolve_revision(repo, b)
    diff = repo.diff(commit_a, commit_b)
    files = []
    for patch in diff:
        delta = patch.delta
        _, additions, deletions = patch.line_stats
        path = delta.old_file.path if delta.status_char() == "D" else delta.new_file.path
        files.append(FileDiff(path, _DELTA_STATUS.get(delta.status_char(), delta.status_char()),
                              additions, deletions, delta.is_binary))
    return VersionDiff(label_a, label_b, str(commit_a.id), str(commit_b.id), tuple(files), diff.patch or "")


_DELTA_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "typechange", "R": "renamed"}


# -- the production pointer ------------------------------------------------------------------------

def production_commit(repo: pygit2.Repository) -> str | None:
    ref = repo.references.get(PRODUCTION_REF)
    return str(ref.peel(pygit2.Commit).id) if ref is not None else None


def tag_for(repo: pygit2.Repository, commit: str | None) -> str | None:
    """The highest vX.Y.Z tag on `commit`, if any."""
    if commit is None:
        return None
    on_commit = [version for version, ref in semver_tags(repo).items()
                 if str(repo.references[ref].peel(pygit2.Commit).id) == commit]
    return max(on_commit).tag if on_commit else None


def promote(repo: pygit2.Repository, version: str, user: str) -> ProductionChange:
    """Point production at `version`'s commit: a ref move with a reflog entry, nothing rewritten."""
    name = strategy_name(repo)
    tag, commit = resolve_version(repo, version)
    current = production_commit(repo)
    if current == str(commit.id):
        raise VersioningError(f"strategy {name}: {tag} is already in production")
    _move_production(repo, commit.id, PROMOTE_MESSAGE.format(tag=tag), user)
    return ProductionChange(name, "promote", tag, str(commit.id), tag_for(repo, current), current, "")


def reflog_history(repo: pygit2.Repository) -> list[PointerMove]:
    """The production pointer's moves, oldest first, read from its reflog."""
    ref = repo.references.get(PRODUCTION_REF)
    if ref is None:
        return []
    moves = []
    for entry in reversed(list(ref.log())):
        message = entry.message or ""
        action = "rollback" if message.startswith("tradeops rollback") else "promote"
        tags = _TAG_IN_MESSAGE.findall(message)
        moves.append(PointerMove(action, str(entry.oid_new), tags[-1] if tags else None, entry.committer.name))
    return moves


def deployment_stack(history: Iterable[PointerMove]) -> list[PointerMove]:
    """Promotions still standing: a promotion pushes, a rollback pops back to the one before."""
    stack: list[PointerMove] = []
    for move in history:
        if move.action == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1].commit != move.commit:
            stack.append(move)
    return stack


def rollback_target(history: Iterable[PointerMove], current: str) -> PointerMove | None:
    """The promotion before the current one, or None when the history cannot name one."""
    stack = deployment_stack(history)
    if not stack or stack[-1].commit != current:
        stack.append(PointerMove("promote", current, None))
    return stack[-2] if len(stack) >= 2 else None


def rollback(repo: pygit2.Repository, user: str, history: list[PointerMove] | None = None,
             source: str = "reflog") -> ProductionChange:
    """Point production back at the previously promoted version. The target comes from the
    production reflog unless `history` (e.g. read from the audit trail) is given."""
    name = strategy_name(repo)
    current = production_commit(repo)
    if current is None:
        raise VersioningError(f"strategy {name}: nothing is in production (no {PRODUCTION_REF}); nothing to roll back")
    target = rollback_target(reflog_history(repo) if history is None else history, current)
    if target is None:
        raise VersioningError(f"strategy {name}: the {source} names no version promoted before "
                              f"{tag_for(repo, current) or current[:12]}; nothing to roll back to")
    if target.commit not in repo:
        raise VersioningError(f"strategy {name}: rollback target {target.tag or target.commit[:12]} "
                              "is not in the repository")
    tag = target.tag or tag_for(repo, target.commit)
    current_tag = tag_for(repo, current)
    message = ROLLBACK_MESSAGE.format(current=current_tag or current[:12], tag=tag or target.commit[:12])
    _move_production(repo, pygit2.Oid(hex=target.commit), message, user)
    return ProductionChange(name, "rollback", tag, target.commit, current_tag, current, source)


def restore(repo: pygit2.Repository, commit: str, expected_current: str, user: str) -> ProductionChange:
    """Point production back at `commit` (the version before a promotion), provided it is still at
    `expected_current`: a rollback with a named target, e.g. undoing an experiment's promotion."""
    name = strategy_name(repo)
    current = production_commit(repo)
    if current != expected_current:
        raise VersioningError(f"strategy {name}: production is at {tag_for(repo, current) or (current or 'nothing')[:12]}, "
                              f"not at {tag_for(repo, expected_current) or expected_current[:12]}: it moved since; "
                              "roll back with `tradeops strategy rollback` instead")
    if commit not in repo:
        raise VersioningError(f"strategy {name}: version {commit[:12]} is not in the repository")
    tag, current_tag = tag_for(repo, commit), tag_for(repo, current)
    message = ROLLBACK_MESSAGE.format(current=current_tag or current[:12], tag=tag or commit[:12])
    _move_production(repo, pygit2.Oid(hex=commit), message, user)
    return ProductionChange(name, "rollback", tag, commit, current_tag, current, "experiment")


def _move_production(repo: pygit2.Repository, commit: pygit2.Oid, message: str, user: str) -> None:
    name = strategy_name(repo)
    if not repo.is_bare and not repo.head_is_detached and repo.head.name == PRODUCTION_REF:
        raise VersioningError(f"strategy {name}: production is checked out in {repo.workdir}; "
                              "check out another branch so the pointer can move without touching files")
    repo.set_ident(user, user)  # the reflog entry names the acting user
    repo.create_reference_direct(PRODUCTION_REF, commit, True, message=message)


def _when(signature: pygit2.Signature) -> datetime:
    zone = timezone(timedelta(minutes=signature.offset))
    return datetime.fromtimestamp(signature.time, zone)


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
