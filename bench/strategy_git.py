"""Benchmark: strategy versioning (pygit2, in-process) vs the same steps with the `git` CLI, on a
strategy repository with a long history (default 500 commits, 50 annotated tags).

Runbook 000 shows git only as CLI commands and sets "Git Operations <2s" (alert over 3 s); the
baseline is what an operator would type for each step:
  version   git add -A; git commit -m MSG; git tag -l 'v*' --sort=-v:refname; git tag -a vX.Y.Z -m MSG
  promote   git update-ref -m MSG refs/heads/production vX.Y.Z^{commit}
  diff      git diff --numstat -p vA vB
  versions  git for-each-ref (tag, commit, date, subject) refs/tags; git rev-parse production
Each side works on its own copy of the same repository. The last line times the whole
`tradeops strategy version` command (role check, commit + tag, audit entry in a SQLite ops store).

    .venv/bin/python bench/strategy_git.py [--commits 500] [--tags 50] [--rounds 15]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from itertools import count
from pathlib import Path
from types import SimpleNamespace

from _common import median_seconds

import pygit2

from blocks.git import GitRepositorySet
from tasks.strategies.versioning import SemVer, create_version, diff_versions, list_versions, promote
from tradeops.sandbox.git_repos import create_strategy_repo
from tradeops.store.engine import upgrade
from tradeops.cli.commands.strategy import run_strategy_command

TARGET_S = 2.0  # runbook 000 "Performance Benchmarks": Git Operations achieved < 2 s
SIGNATURE = pygit2.Signature("bench", "bench@tradeops.example")


def long_history_repo(path: Path, commits: int, tags: int) -> None:
    """A sandbox strategy repository with `commits` on main, keeping `tags` evenly spaced tags."""
    repo = create_strategy_repo(path, path.name, 7, datetime.now(timezone.utc), commits)
    names = sorted((n for n in repo.listall_references() if n.startswith("refs/tags/")),
                   key=lambda n: SemVer.parse(n.rsplit("/", 1)[1]))
    keep = {names[round(i * (len(names) - 1) / max(tags - 1, 1))] for i in range(min(tags, len(names)))}
    for name in set(names) - keep:
        repo.references.delete(name)
    repo.free()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def touch(repo: Path, n: int) -> None:
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + f"# round {n}\n")


def cli_version(repo: Path, rounds: count) -> None:
    touch(repo, next(rounds))
    highest = git(repo, "tag", "-l", "v*", "--sort=-v:refname").split()[0]
    tag = SemVer.parse(highest).bump("patch").tag
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bench version")
    git(repo, "tag", "-a", tag, "-m", "bench version")


def ours_version(repo: pygit2.Repository, rounds: count) -> None:
    touch(Path(repo.workdir), next(rounds))
    create_version(repo, "patch", "bench version", SIGNATURE)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    os.environ.update({"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@tradeops.example",
                       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@tradeops.example"})
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        long_history_repo(root / "template" / "strategy", args.commits, args.tags)
        ours_path, cli_path = root / "ours" / "strategy", root / "cli" / "strategy"
        shutil.copytree(root / "template" / "strategy", ours_path)
        shutil.copytree(root / "template" / "strategy", cli_path)
        repo = pygit2.Repository(str(ours_path))
        tags = [v.tag for v in list_versions(repo)]
        print(f"repository: {args.commits} commits on main, {len(tags)} tags ({tags[0]}..{tags[-1]})")

        ours_rounds, cli_rounds = count(), count()
        results.append(("version (commit + annotated tag)",
                        median_seconds(lambda: ours_version(repo, ours_rounds), args.rounds),
                        "git add/commit/tag -l/tag -a",
                        median_seconds(lambda: cli_version(cli_path, cli_rounds), args.rounds)))
        flip, flop = count(), count()
        results.append(("promote (production ref move + reflog)",
                        median_seconds(lambda: promote(repo, tags[next(flip) % 2 - 3], "bench"), args.rounds),
                        "git update-ref -m",
                        median_seconds(lambda: git(cli_path, "update-ref", "-m", "promote", "refs/heads/production",
                                                   f"{tags[next(flop) % 2 - 3]}^{{commit}}"), args.rounds)))
        results.append((f"diff {tags[0]}..{tags[-1]} (numstat + patch)",
                        median_seconds(lambda: diff_versions(repo, tags[0], tags[-1]), args.rounds),
                        "git diff --numstat -p",
                        median_seconds(lambda: git(cli_path, "diff", "--numstat", "-p", tags[0], tags[-1]),
                                       args.rounds)))
        results.append(("versions (tags, dates, messages, production)",
                        median_seconds(lambda: list_versions(repo), args.rounds),
                        "git for-each-ref + rev-parse",
                        median_seconds(lambda: (git(cli_path, "for-each-ref", "--format=%(refname:short) "
                                                    "%(*objectname) %(taggerdate:iso) %(contents:subject)",
                                                    "refs/tags"),
                                                git(cli_path, "rev-parse", "production")), args.rounds)))
        upgrade(f"sqlite:///{root / 'ops.db'}")
        end_to_end = median_seconds(lambda: command_version(root, ours_path, ours_rounds), args.rounds)

    for what, ours, baseline_name, baseline in results:
        print(f"{what} (median of {args.rounds}): tradeops {ours * 1000:.2f} ms, {baseline_name} "
              f"{baseline * 1000:.2f} ms, ratio {baseline / ours:.2f}x")
    print(f"tradeops strategy version end to end (role check, commit + tag, audit entry; median of {args.rounds}): "
          f"{end_to_end * 1000:.2f} ms")
    slowest = max([r[1] for r in results] + [end_to_end])
    verdict = "within" if slowest < TARGET_S else "OVER"
    print(f"runbook 000 target: git operations < {TARGET_S:.0f} s; slowest median here {slowest * 1000:.1f} ms "
          f"({verdict} the target, {TARGET_S / slowest:.0f}x headroom)")
    return 0


def command_version(root: Path, repo_path: Path, rounds: count) -> None:
    """The CLI command's whole path, on the same repository, with a SQLite ops store."""
    store = f"sqlite:///{root / 'ops.db'}"
    git_set = GitRepositorySet(target="bench", root=str(repo_path.parent))
    block = SimpleNamespace(store_url=lambda: store, access_users={"bench": "strategy_developer"},
                            git_sets=lambda: [git_set], strategy_approval_required=False)
    touch(repo_path, next(rounds))
    args = argparse.Namespace(strategy_command="version", strategy=repo_path.name, bump="patch",
                              message="bench version", user="bench", json=True)
    with contextlib.redirect_stdout(io.StringIO()):
        run_strategy_command(block, "bench", args)


if __name__ == "__main__":
    raise SystemExit(main())
