"""Strategy versioning (issue 7, runbook 000 "Git Integration Operations") on real repositories.

Sandbox strategy repositories (main/develop/feature branches, annotated tags v1.0.0..v1.3.0)
are versioned, diffed, promoted and rolled back; the results are checked against the `git` CLI
itself (name-status, numstat, cat-file, reflog), and the audit entries are read back from a SQLite
ops store. Runbook 000's users: alice strategy_developer, bob and carol senior_trader, admin
system_administrator, olga compliance_officer.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pygit2
import pytest
from pygit2.enums import ObjectType
from sqlmodel import select

from blocks.git import GitRepositorySet
from tasks.access import ROLES
from tasks.changes import list_changes
from tasks.strategies.versioning import (
    VersioningError, create_version, diff_versions, list_versions, production_commit, promote, reflog_history,
    rollback, working_changes,
)
from tradeops.errors import TradeopsError
from tradeops.sandbox.git_repos import create_strategy_repos
from tradeops.store import AuditEntry, session_for
from tradeops.store.engine import upgrade
from tradeops.store.identity import os_login
from tradeops.cli.commands.strategy import run as cmd_strategy
from tradeops.cli.commands.strategy import run_strategy_command
from tradeops.cli.main import build_parser

NOW = datetime(2025, 11, 26, 10, 30, tzinfo=timezone.utc)
STRATEGY = "mean_reversion"
USERS = {"alice": "strategy_developer", "bob": "senior_trader", "carol": "senior_trader",
         "admin": "system_administrator", "olga": "compliance_officer"}
LOGINS = {os_login(): "admin"}  # the test's OS account administers; --user acts as each user
ALICE = pygit2.Signature("alice", "alice")
GIT_PERMISSIONS = ("git.read", "git.commit", "git.create_version", "git.merge")
# runbook 000 "Access Control Management" (rbac.yml), written out from the runbook
RUNBOOK_GIT_GRANTS = {
    "strategy_developer": {"git.read", "git.commit", "git.create_version"},
    "senior_trader": set(GIT_PERMISSIONS),
    "system_administrator": set(GIT_PERMISSIONS),
    "compliance_officer": set(),
}


@pytest.fixture
def repos_dir(tmp_path) -> Path:
    # 12 commits on main: tags v1.0.0, v1.1.0, v1.2.0, v1.3.0 on every third commit
    create_strategy_repos(tmp_path / "repos", (STRATEGY, "momentum_alpha"), 11, NOW, 12)
    return tmp_path / "repos"


@pytest.fixture
def repo(repos_dir) -> pygit2.Repository:
    return pygit2.Repository(str(repos_dir / STRATEGY))


@pytest.fixture
def store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(url)
    return url


def environment(repos_dir: Path, store: str, approval_required: bool) -> SimpleNamespace:
    """The TradeopsEnvironment fields the strategy commands read."""
    git_set = GitRepositorySet(target="strategies", root=str(repos_dir))
    return SimpleNamespace(store_url=lambda: store, access_users=USERS, access_logins=LOGINS, git_sets=lambda: [git_set],
                           strategy_approval_required=approval_required)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(only="strategy").parse_args(["strategy", *argv])


def run(block, capsys, *argv: str) -> tuple[int, object, str]:
    """Like `tradeops strategy ... --json`: exit code, parsed output, stderr."""
    try:
        code = run_strategy_command(block, "test", parse(*argv, "--json"))
    except TradeopsError as exc:  # as tradeops.cli.main reports it
        print(f"tradeops: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def audits(store: str, operation: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id)
    if operation:
        query = query.where(AuditEntry.operation == operation)
    with session_for(store) as session:
        return list(session.exec(query).all())


def git(repo: pygit2.Repository, *args: str) -> str:
    return subprocess.run(["git", "-C", repo.workdir, *args], check=True, capture_output=True, text=True).stdout


def refs(repo: pygit2.Repository) -> dict[str, str]:
    return {name: str(repo.references[name].target) for name in repo.listall_references()}


def reachable(repo: pygit2.Repository) -> set[str]:
    seen: set[str] = set()
    for name in repo.listall_references():
        for commit in repo.walk(repo.references[name].peel(pygit2.Commit).id):
            seen.add(str(commit.id))
    return seen


def edit_working_copy(repo: pygit2.Repository) -> None:
    """One of each: a modification, a deletion (also in a subfolder), a new nested file, an ignored file."""
    workdir = Path(repo.workdir)
    (workdir / "strategy.py").write_text((workdir / "strategy.py").read_text() + "\nMAX_LEVERAGE = 2.0\n")
    (workdir / "README.md").unlink()
    (workdir / "tests" / "test_strategy.py").unlink()
    (workdir / "config").mkdir()
    (workdir / "config" / "parameters.json").write_text('{"lookback": 40}\n')
    (workdir / "__pycache__").mkdir()
    (workdir / "__pycache__" / "strategy.cpython-311.pyc").write_bytes(b"\0ignored")


# -- the role table --------------------------------------------------------------------------------

@pytest.mark.parametrize("role", sorted(RUNBOOK_GIT_GRANTS))
@pytest.mark.parametrize("permission", GIT_PERMISSIONS)
def test_git_permissions_match_the_runbook(role, permission):
    assert ROLES[role].allows(permission) == (permission in RUNBOOK_GIT_GRANTS[role])


# -- versions ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("bump", "expected"), [("patch", "1.3.1"), ("minor", "1.4.0"), ("major", "2.0.0")])
def test_bump_follows_the_highest_existing_tag(repo, bump, expected):
    (Path(repo.workdir) / "strategy.py").write_text("# rewritten\n")
    result = create_version(repo, bump, f"{bump} release", ALICE)
    assert (result.version, result.tag) == (expected, f"v{expected}")


def test_highest_tag_is_compared_as_numbers_and_a_first_version_starts_from_zero(repo, tmp_path):
    repo.create_reference("refs/tags/v1.10.0", repo.head.target)  # lightweight; "1.10" > "1.3" numerically
    (Path(repo.workdir) / "strategy.py").write_text("# rewritten\n")
    assert create_version(repo, "patch", "fix", ALICE).tag == "v1.10.1"

    fresh = pygit2.init_repository(str(tmp_path / "fresh"), initial_head="main")
    (tmp_path / "fresh" / "strategy.py").write_text("print('hello')\n")
    first = create_version(fresh, "minor", "first cut", ALICE)
    assert (first.tag, first.branch, first.changed_files) == ("v0.1.0", "main", ["strategy.py"])
    assert fresh[first.commit].parents == []


def test_version_commits_every_change_on_the_branch_and_tags_it_annotated(repo):
    before_head, before_develop = str(repo.head.target), str(repo.references["refs/heads/develop"].target)
    edit_working_copy(repo)
    assert {(c.path, c.kind) for c in working_changes(repo)} == {
        ("strategy.py", "modified"), ("README.md", "deleted"), ("tests/test_strategy.py", "deleted"),
        ("config/parameters.json", "added")}

    result = create_version(repo, "minor", "Add leverage cap\n\nRisk asked for 2x max.", ALICE)

    assert result.version == "1.4.0" and result.branch == "main"
    assert sorted(result.changed_files) == ["README.md", "config/parameters.json", "strategy.py",
                                            "tests/test_strategy.py"]
    # git itself sees the same commit: on main, one parent (the old HEAD), these four changes
    assert git(repo, "rev-parse", "main").strip() == result.commit
    assert git(repo, "rev-parse", "HEAD^").strip() == before_head
    name_status = dict(reversed(line.split("\t")) for line in git(repo, "show", "--name-status", "--format=",
                                                                      "HEAD").splitlines())
    assert name_status == {"strategy.py": "M", "README.md": "D", "tests/test_strategy.py": "D",
                           "config/parameters.json": "A"}
    # an annotated tag carrying the message, tagged by the acting user; the working copy is clean
    assert git(repo, "cat-file", "-t", "v1.4.0").strip() == "tag"
    message = git(repo, "tag", "-l", "--format=%(contents)", "v1.4.0").strip()
    assert message == "Add leverage cap\n\nRisk asked for 2x max."
    assert git(repo, "tag", "-l", "--format=%(taggername)", "v1.4.0").strip() == "alice"
    assert git(repo, "rev-list", "-n1", "v1.4.0").strip() == result.commit
    assert repo.status() == {} and git(repo, "status", "--porcelain") == ""
    assert str(repo.references["refs/heads/develop"].target) == before_develop
    assert result.elapsed_ms < 2000  # runbook 000: git operations < 2 s


def test_nothing_to_commit_and_an_existing_tag_are_refused_without_side_effects(repo):
    before = refs(repo)
    with pytest.raises(VersioningError, match=f"strategy {STRATEGY}: nothing to commit"):
        create_version(repo, "patch", "no-op", ALICE)
    (Path(repo.workdir) / "__pycache__").mkdir()
    (Path(repo.workdir) / "__pycache__" / "x.pyc").write_bytes(b"\0")  # ignored files are not changes
    with pytest.raises(VersioningError, match="nothing to commit"):
        create_version(repo, "patch", "no-op", ALICE)
    (Path(repo.workdir) / "strategy.py").write_text("# changed\n")
    with pytest.raises(VersioningError, match=f"strategy {STRATEGY}: tag v1.2.0 exists already"):
        create_version(repo, "patch", "again", ALICE, version="1.2.0")
    repo.create_reference_direct("refs/heads/production", repo.head.target, True)
    repo.set_head("refs/heads/production")
    with pytest.raises(VersioningError, match="the working copy is on production"):
        create_version(repo, "patch", "sneaky", ALICE)
    assert {k: v for k, v in refs(repo).items() if k != "refs/heads/production"} == before


def test_versions_list_dates_messages_commits_and_production(repo):
    versions = list_versions(repo)
    assert [v.tag for v in versions] == ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"]
    tags = git(repo, "for-each-ref", "--format=%(refname:short) %(*objectname) %(contents:subject)", "refs/tags")
    assert {(v.tag, v.commit, v.message) for v in versions} == {tuple(line.split(" ", 2)) for line in tags.splitlines()}
    assert all(v.tagger == "tradeops release bot" and v.date.tzinfo is not None for v in versions)
    assert not any(v.in_production for v in versions)
    promote(repo, "1.2.0", "bob")
    assert [v.tag for v in list_versions(repo) if v.in_production] == ["v1.2.0"]


# -- diffs -----------------------------------------------------------------------------------------

def test_diff_counts_equal_git_numstat(repo):
    edit_working_copy(repo)
    create_version(repo, "minor", "Add leverage cap", ALICE)
    for a, b in (("1.0.0", "1.4.0"), ("v1.3.0", "v1.4.0"), ("1.4.0", "1.1.0"), ("v1.2.0", "develop")):
        diff = diff_versions(repo, a, b)
        numstat = git(repo, "diff", "--numstat", "--no-renames", _rev(a), _rev(b))
        expected = {path: (int(add), int(dele)) for add, dele, path in (l.split("\t") for l in numstat.splitlines())}
        assert {f.path: (f.additions, f.deletions) for f in diff.files} == expected, (a, b)
        # the patch text carries the same lines
        plus = [l for l in diff.patch.splitlines() if l.startswith("+") and not l.startswith("+++")]
        minus = [l for l in diff.patch.splitlines() if l.startswith("-") and not l.startswith("---")]
        assert (len(plus), len(minus)) == (diff.additions, diff.deletions)
    statuses = {f.path: f.status for f in diff_versions(repo, "1.3.0", "1.4.0").files}
    assert statuses["README.md"] == "deleted" and statuses["config/parameters.json"] == "added"
    with pytest.raises(VersioningError, match=f"strategy {STRATEGY}: no version '9.9.9'"):
        diff_versions(repo, "1.0.0", "9.9.9")
    with pytest.raises(VersioningError, match="no version or revision 'no-such-branch'"):
        diff_versions(repo, "no-such-branch", "1.0.0")


def _rev(text: str) -> str:
    return f"v{text}" if re.match(r"^\d", text) else text


# -- the production pointer ------------------------------------------------------------------------

def test_promote_and_rollback_move_only_production_and_rewrite_nothing(repo):
    edit_working_copy(repo)
    create_version(repo, "minor", "Add leverage cap", ALICE)
    before_refs, before_commits = refs(repo), reachable(repo)
    commit_of = {v.tag: v.commit for v in list_versions(repo)}

    def production_is(tag: str) -> None:
        assert production_commit(repo) == commit_of[tag]
        assert git(repo, "rev-parse", "production").strip() == commit_of[tag]
        # every other ref as it was, every earlier commit still reachable, the working copy untouched
        assert {k: v for k, v in refs(repo).items() if k != "refs/heads/production"} == before_refs
        assert before_commits <= reachable(repo)
        assert repo.head.shorthand == "main" and repo.status() == {}

    promote(repo, "1.1.0", "bob")
    production_is("v1.1.0")
    promote(repo, "1.3.0", "bob")
    production_is("v1.3.0")
    with pytest.raises(VersioningError, match="v1.3.0 is already in production"):
        promote(repo, "v1.3.0", "bob")
    promote(repo, "1.4.0", "carol")
    production_is("v1.4.0")

    change = rollback(repo, "bob")
    assert (change.previous_tag, change.tag, change.source) == ("v1.4.0", "v1.3.0", "reflog")
    production_is("v1.3.0")
    rollback(repo, "bob")  # each rollback undoes one promotion
    production_is("v1.1.0")
    with pytest.raises(VersioningError, match="names no version promoted before v1.1.0"):
        rollback(repo, "bob")
    promote(repo, "1.2.0", "bob")
    rollback(repo, "bob")
    production_is("v1.1.0")

    # the reflog, read by git, records every move with the action, the versions and the user
    log = git(repo, "reflog", "show", "--format=%gs|%gn", "refs/heads/production").splitlines()
    assert log == ["tradeops rollback v1.2.0 -> v1.1.0|bob", "tradeops promote v1.2.0|bob",
                   "tradeops rollback v1.3.0 -> v1.1.0|bob", "tradeops rollback v1.4.0 -> v1.3.0|bob",
                   "tradeops promote v1.4.0|carol", "tradeops promote v1.3.0|bob", "tradeops promote v1.1.0|bob"]
    assert [m.action for m in reflog_history(repo)].count("rollback") == 3
    subprocess.run(["git", "-C", repo.workdir, "fsck", "--no-progress"], check=True, capture_output=True)


def test_rollback_reads_the_audit_trail_when_the_reflog_was_expired(repos_dir, repo, store, capsys):
    block = environment(repos_dir, store, approval_required=False)
    assert run(block, capsys, "promote", STRATEGY, "1.1.0", "--user", "bob")[0] == 0
    assert run(block, capsys, "promote", STRATEGY, "1.2.0", "--user", "bob")[0] == 0
    # runbook 000 troubleshooting: "git reflog expire --expire=now --all"
    git(repo, "reflog", "expire", "--expire=now", "--all")
    assert reflog_history(pygit2.Repository(repo.workdir)) == []
    code, out, _ = run(block, capsys, "rollback", STRATEGY, "--user", "bob")
    assert code == 0 and (out["production"], out["previous"], out["source"]) == ("v1.1.0", "v1.2.0", "audit trail")
    assert git(repo, "rev-parse", "production").strip() == git(repo, "rev-list", "-n1", "v1.1.0").strip()


# -- change control and audit ----------------------------------------------------------------------

def test_promotion_needs_an_approval_by_another_user_with_git_merge(repos_dir, repo, store, capsys):
    block = environment(repos_dir, store, approval_required=True)
    (Path(repo.workdir) / "strategy.py").write_text("# v1.4\n")
    code, out, _ = run(block, capsys, "version", STRATEGY, "--bump", "minor", "-m", "Tighter stops", "--user", "bob")
    assert code == 0 and out["tag"] == "v1.4.0"

    code, _, err = run(block, capsys, "approve", STRATEGY, "1.4.0", "--user", "bob")
    assert code == 3 and "'bob' made mean_reversion v1.4.0 and cannot approve it" in err
    for user in ("alice", "olga"):  # strategy_developer, compliance_officer: no git.merge
        code, _, err = run(block, capsys, "approve", STRATEGY, "1.4.0", "--user", user)
        assert code == 3 and "lacks permission git.merge" in err
    code, _, err = run(block, capsys, "promote", STRATEGY, "1.4.0", "--user", "bob")
    assert code == 3 and "needs an approval" in err and "approvals on record: none" in err

    code, out, _ = run(block, capsys, "approve", STRATEGY, "v1.4.0", "--user", "carol")
    assert code == 0 and (out["approved_by"], out["author"]) == ("carol", "bob")
    code, _, err = run(block, capsys, "promote", STRATEGY, "1.4.0", "--user", "carol")  # approver != promoter
    assert code == 3 and "other than 'carol'" in err
    assert production_commit(repo) is None
    code, out, _ = run(block, capsys, "promote", STRATEGY, "1.4.0", "--user", "bob")
    assert code == 0 and (out["production"], out["approved_by"]) == ("v1.4.0", "carol")
    # a change request (runbook 003), raised and implemented by the promotion, linked to its audit entry
    [request] = list_changes(store, "test")
    assert (request.number, request.status, request.source) == (out["change_request"], "implemented",
                                                                "strategy-promotion")
    [move] = [a for a in audits(store, "strategy_promote") if a.success]
    [implemented] = audits(store, "change_implemented")
    assert request.links["audit_entries"] == [move.id, implemented.id] and request.links["approved_by"] == "carol"
    assert request.links["commit"] == out["commit"] and "v1.4.0" in request.title

    # an approval is of a commit: v1.3.0 re-tagged elsewhere after approval needs a new one
    assert run(block, capsys, "approve", STRATEGY, "1.3.0", "--user", "carol")[0] == 0
    repo.references.delete("refs/tags/v1.3.0")
    repo.create_tag("v1.3.0", repo.revparse_single("develop").id, ObjectType.COMMIT, ALICE, "moved\n")
    code, _, err = run(block, capsys, "promote", STRATEGY, "1.3.0", "--user", "admin")
    assert code == 3 and "approvals on record: carol" in err
    # rollback needs no approval: it returns to a version promoted before
    assert run(block, capsys, "promote", STRATEGY, "1.4.0", "--user", "admin")[0] == 2  # already there
    assert run(block, capsys, "rollback", STRATEGY, "--user", "bob")[0] == 2  # nothing promoted before

    assert len(list_changes(store, "test")) == 1  # refused promotions raise none
    denied = [(a.operation, a.user) for a in audits(store) if not a.success]
    assert denied == [("strategy_approve", "bob"), ("strategy_approve", "alice"), ("strategy_approve", "olga"),
                      ("strategy_promote", "bob"), ("strategy_promote", "carol"), ("strategy_promote", "admin")]


def test_audit_entries_carry_runbook_fields(repos_dir, repo, store, capsys):
    block = environment(repos_dir, store, approval_required=True)
    edit_working_copy(repo)
    code, out, _ = run(block, capsys, "version", STRATEGY, "--bump", "patch", "-m", "Leverage cap", "--user", "alice")
    assert code == 0
    assert re.fullmatch(r"audit-\d{4}-\d{2}-\d{2}-\d{6}", out["audit_trail_id"])
    [entry] = audits(store, "strategy_version")
    assert (entry.user, entry.strategy_name, entry.version, entry.repository_hash, entry.success) == \
        ("alice", STRATEGY, "1.3.1", out["commit"], True)
    assert sorted(json.loads(entry.changed_files)) == ["README.md", "config/parameters.json", "strategy.py",
                                                       "tests/test_strategy.py"]
    assert json.loads(entry.compliance_flags) == {"sox_404": True, "change_control": True, "approval_required": True}
    assert 0 <= entry.execution_time_ms < 2000 and out["audit_trail_id"].endswith(f"{entry.id:06d}")

    assert run(block, capsys, "approve", STRATEGY, "1.3.1", "--user", "bob")[0] == 0
    assert run(block, capsys, "promote", STRATEGY, "1.3.1", "--user", "carol")[0] == 0
    code, out, _ = run(block, capsys, "diff", STRATEGY, "1.3.0", "1.3.1", "--user", "olga")
    assert code == 3  # compliance officers hold no git.read in runbook 000
    code, out, _ = run(block, capsys, "diff", STRATEGY, "1.3.0", "1.3.1", "--user", "alice")
    assert code == 0 and len(out["files"]) == 4
    code, out, _ = run(block, capsys, "versions", STRATEGY, "--user", "alice")
    assert [v["tag"] for v in out["versions"] if v["in_production"]] == ["v1.3.1"]

    [approve] = audits(store, "strategy_approve")
    [promoted] = audits(store, "strategy_promote")
    assert (approve.user, approve.version, approve.repository_hash) == ("bob", "1.3.1", entry.repository_hash)
    assert json.loads(promoted.compliance_flags) == {"sox_404": True, "change_control": True,
                                                     "approval_required": True, "approved_by": "bob"}
    assert (promoted.user, promoted.repository_hash) == ("carol", entry.repository_hash)
    [denied_diff, diffed] = audits(store, "strategy_diff")
    assert (denied_diff.success, diffed.success, diffed.version) == (False, True, "1.3.1")
    assert "git.read" in json.loads(denied_diff.details)["denied"]
    assert json.loads(diffed.compliance_flags)["change_control"] is False
    strategy_entries = [a for a in audits(store) if a.operation.startswith("strategy_")]
    assert all(a.execution_time_ms is not None and a.execution_time_ms < 2000 for a in strategy_entries)


def test_usage_errors_exit_2_and_record_nothing(repos_dir, repo, store, capsys):
    block = environment(repos_dir, store, approval_required=False)
    code, _, err = run(block, capsys, "versions", "no_such_strategy", "--user", "bob")
    assert code == 2 and "no strategy repository named 'no_such_strategy'" in err and "momentum_alpha" in err
    code, _, err = run(block, capsys, "promote", STRATEGY, "7.0.0", "--user", "bob")
    assert code == 2 and f"strategy {STRATEGY}: no version '7.0.0'" in err
    code, _, err = run(block, capsys, "version", STRATEGY, "--bump", "patch", "-m", "x", "--user", "bob")
    assert code == 2 and f"strategy {STRATEGY}: nothing to commit" in err
    assert audits(store) == []


@pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)
def test_cmd_strategy_acts_on_a_saved_environment(repos_dir, repo, tmp_path, monkeypatch, capsys):
    from blocks import TradeopsEnvironment

    name = f"strategies-{tmp_path.name[-12:]}".replace("_", "-").lower()
    GitRepositorySet(target="strategies", root=str(repos_dir)).save(f"{name}-git", overwrite=True)
    TradeopsEnvironment(data_dir=str(tmp_path / "ops"), ops_store_url=f"sqlite:///{tmp_path / 'env.db'}",
                        git_blocks=[f"{name}-git"], access_users=USERS, access_logins=LOGINS).save(name, overwrite=True)
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    assert cmd_strategy(parse("versions", STRATEGY, "--user", "alice")) == 0
    assert "v1.3.0" in capsys.readouterr().out
    # without the [strategies] setting, promotion needs no approval
    assert cmd_strategy(parse("promote", STRATEGY, "1.3.0", "--user", "bob", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["production"] == "v1.3.0"
