"""Trying a plan: a scratch virtualenv with the current pins from the wheelhouse (pip --no-index),
the application's tests there (its base branch's files, exported), then each planned update in
turn with the tests after each one. The first update that does not install or breaks the tests
stops the run: nothing is committed (the rollback) and the package is named. When all pass, the
new pins are committed on a branch `deps/update-<date>` of the application's repository (pygit2;
the working copy is not touched)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, ObjectType

from blocks.applications import PythonApplication
from tasks.dependencies.plan import PackageStatus

OUTPUT_TAIL_CHARS = 2000
PIP_TIMEOUT_SECONDS = 600
BRANCH_PREFIX = "deps/update-"
COMMITTER = ("tradeops dependency-update", "tradeops@localhost")


@dataclass(frozen=True)
class TrialOutcome:
    """How the trial ended: passed, or which step broke (baseline install or tests, or a package)."""

    passed: bool
    broken_package: str | None = None  # the update that broke the install or the tests
    step: str = ""  # what failed: "install the current pins", "tests before any update", "tests after X 1.2.3"
    output: str = ""  # the tail of what failed said
    tests_run: int = 0


def _tail(text: str) -> str:
    return text[-OUTPUT_TAIL_CHARS:]


def export_tree(repo: pygit2.Repository, tree: pygit2.Tree, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in tree:
        obj = repo[entry.id]
        path = target / entry.name
        if obj.type == ObjectType.TREE:
            export_tree(repo, obj, path)
        elif obj.type == ObjectType.BLOB:
            path.write_bytes(obj.data)
            if entry.filemode == FileMode.BLOB_EXECUTABLE:
                path.chmod(0o755)


def base_commit(repo: pygit2.Repository, branch: str) -> pygit2.Commit:
    ref = repo.branches.local.get(branch)
    if ref is None:
        raise ValueError(f"{repo.workdir}: no branch {branch!r}")
    return ref.peel(pygit2.Commit)


class Scratch:
    """A scratch virtualenv and a copy of the application's files, removed afterwards."""

    def __init__(self, app: PythonApplication, repo: pygit2.Repository, commit: pygit2.Commit):
        self.app = app
        self._tmp = tempfile.TemporaryDirectory(prefix="tradeops-deps-")
        root = Path(self._tmp.name)
        self.source, self.venv = root / "src", root / "venv"
        export_tree(repo, commit.tree, self.source)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True,
                       capture_output=True, timeout=120)
        self.python = self.venv / "bin" / "python"

    def close(self) -> None:
        self._tmp.cleanup()

    def pip_install(self, *requirements: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--no-index",
                   "--find-links", self.app.wheelhouse, "--disable-pip-version-check", "--no-input", "-q",
                   *requirements]
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1"}
        return subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, env=env)

    def run_tests(self) -> subprocess.CompletedProcess:
        command = [part.replace("{python}", str(self.python)) for part in self.app.test_command]
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(PYTHONDONTWRITEBYTECODE="1", VIRTUAL_ENV=str(self.venv),
                   PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        return subprocess.run(command, cwd=self.source, capture_output=True, text=True,
                              timeout=self.app.test_timeout_seconds, env=env)


def try_plan(app: PythonApplication, pins: list[tuple[str, str]], updates: list[PackageStatus]) -> TrialOutcome:
    """The current pins and test tools, the tests; then each update and the tests again. A step
    that overruns its timeout fails the trial like a failing step, naming it."""
    repo = pygit2.Repository(app.path)
    try:
        scratch = Scratch(app, repo, base_commit(repo, app.base_branch))
    except (subprocess.SubprocessError, OSError) as exc:
        repo.free()
        return TrialOutcome(False, None, "create the scratch virtualenv", _tail(str(exc)))
    try:
        return _trial_steps(app, scratch, pins, updates)
    finally:
        scratch.close()
        repo.free()


def _trial_steps(app: PythonApplication, scratch: Scratch, pins: list[tuple[str, str]],
                 updates: list[PackageStatus]) -> TrialOutcome:
    step, package, runs = "install the current pins", None, 0
    try:
        installed = scratch.pip_install(*[f"{name}=={version}" for name, version in pins], *app.test_requirements)
        if installed.returncode:
            return TrialOutcome(False, None, step, _tail(installed.stderr + installed.stdout))
        step = "tests before any update"
        tested = scratch.run_tests()
        runs = 1
        if tested.returncode:
            return TrialOutcome(False, None, step, _tail(tested.stdout + tested.stderr), runs)
        for status in updates:
            label = f"{status.name} {status.current} -> {status.planned}"
            step, package = f"install {label}", status.name
            installed = scratch.pip_install(f"{status.name}=={status.planned}")
            if installed.returncode:
                return TrialOutcome(False, package, step, _tail(installed.stderr + installed.stdout), runs)
            step = f"tests after {label}"
            tested = scratch.run_tests()
            runs += 1
            if tested.returncode:
                return TrialOutcome(False, package, step, _tail(tested.stdout + tested.stderr), runs)
        return TrialOutcome(True, tests_run=runs)
    except subprocess.TimeoutExpired as exc:
        return TrialOutcome(False, package, f"{step} (timed out after {exc.timeout:g} s)",
                            _tail(str(exc.output or "")), runs)


def free_branch_name(repo: pygit2.Repository, day: date) -> str:
    name = f"{BRANCH_PREFIX}{day.isoformat()}"
    candidate, n = name, 1
    while repo.branches.local.get(candidate) is not None:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _replace_blob(repo: pygit2.Repository, tree: pygit2.Tree, parts: list[str], data: bytes) -> pygit2.Oid:
    builder = repo.TreeBuilder(tree)
    head, *rest = parts
    if rest:
        builder.insert(head, _replace_blob(repo, repo[tree[head].id], rest, data), FileMode.TREE)
    else:
        builder.insert(head, repo.create_blob(data), FileMode.BLOB)
    return builder.write()


def commit_pins(app: PythonApplication, new_text: str, message: str, author: str, day: date) -> tuple[str, str]:
    """Commit the new requirements on a fresh `deps/update-<day>` branch off the base branch;
    returns (branch, commit id)."""
    repo = pygit2.Repository(app.path)
    try:
        parent = base_commit(repo, app.base_branch)
        tree = _replace_blob(repo, parent.tree, app.requirements_file.split("/"), new_text.encode())
        branch = free_branch_name(repo, day)
        signature = pygit2.Signature(author, f"{author}@tradeops")
        committer = pygit2.Signature(*COMMITTER)
        commit = repo.create_commit(f"refs/heads/{branch}", signature, committer, message, tree, [parent.id])
        return branch, str(commit)
    finally:
        repo.free()


def requirements_at_base(app: PythonApplication) -> str:
    repo = pygit2.Repository(app.path)
    try:
        tree = base_commit(repo, app.base_branch).tree
        obj = tree
        for part in app.requirements_file.split("/"):
            obj = repo[obj[part].id]
        return obj.data.decode()
    finally:
        repo.free()
