"""One application's dependency update, start to end: scan, plan, try, commit (or roll back).

Outcomes, most severe first (`OUTCOMES`): "scan failed" (a requirements, index or advisories file
could not be read: nothing is planned or changed), "update failed" (an update did not install or
broke the tests: rolled back, the package named), "vulnerabilities found" (known vulnerabilities
remain after the plan; the plan's updates are committed when they passed), "updated" (new pins on
a branch), "nothing to do".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pygit2
from packaging.utils import canonicalize_name
from prefect import task

from blocks.applications import PythonApplication
from tasks.dependencies.apply import TrialOutcome, commit_pins, requirements_at_base, try_plan
from tasks.dependencies.plan import PackageStatus, build_plan
from tasks.dependencies.scan import (
    Requirements, ScanFailed, parse_requirements, read_advisories, read_index_versions, write_requirements,
)

SCAN_FAILED = "scan failed"
UPDATE_FAILED = "update failed"
VULNERABILITIES_FOUND = "vulnerabilities found"
UPDATED = "updated"
NOTHING_TO_DO = "nothing to do"
OUTCOMES = (SCAN_FAILED, UPDATE_FAILED, VULNERABILITIES_FOUND, UPDATED, NOTHING_TO_DO)  # most severe first
FAILED_OUTCOMES = (SCAN_FAILED, UPDATE_FAILED, VULNERABILITIES_FOUND)


@dataclass
class ApplicationUpdate:
    target: str
    outcome: str
    packages: list[PackageStatus] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    error: str | None = None  # scan failed: which file, what is wrong
    trial: TrialOutcome | None = None
    branch: str | None = None
    commit: str | None = None
    new_requirements: str | None = None
    change_request: str | None = None
    audit_entry_id: int | None = None

    @property
    def updates(self) -> list[PackageStatus]:
        return [p for p in self.packages if p.planned]

    @property
    def remaining(self) -> list[str]:
        return sorted({f"{v.package} {v.version}: {v.id}" for p in self.packages for v in p.remaining})

    def failure(self) -> str | None:
        if self.outcome == SCAN_FAILED:
            return f"{self.target}: scan failed: {self.error}"
        if self.outcome == UPDATE_FAILED:
            trial = self.trial
            culprit = f"{trial.broken_package} broke it" if trial.broken_package else "no update was tried"
            return f"{self.target}: update failed at '{trial.step}' ({culprit}); rolled back, pins unchanged"
        if self.outcome == VULNERABILITIES_FOUND:
            return f"{self.target}: vulnerabilities found: {'; '.join(self.remaining)}"
        return None


def worst_outcome(outcomes: list[str]) -> str:
    return min(outcomes, key=OUTCOMES.index, default=NOTHING_TO_DO)


def scan(app: PythonApplication) -> tuple[Requirements, list[PackageStatus]]:
    """Pins (the base branch's), index versions and advisories, and the plan; ScanFailed names the file."""
    source = f"{Path(app.path) / app.requirements_file} (branch {app.base_branch})"
    try:
        text = requirements_at_base(app)
    except (KeyError, ValueError, OSError, pygit2.GitError) as exc:
        raise ScanFailed(f"{source}: cannot read it from git: {type(exc).__name__}: {exc}") from None
    requirements = parse_requirements(text, source)
    index = read_index_versions(Path(app.index_versions_file))
    advisories = read_advisories(Path(app.advisories_file))
    return requirements, build_plan(requirements.pins, index, advisories, app.allow_security_updates)


def update_application(app: PythonApplication, author: str, today: date) -> ApplicationUpdate:
    try:
        requirements, packages = scan(app)
    except ScanFailed as exc:
        return ApplicationUpdate(app.target, SCAN_FAILED, error=str(exc))
    result = ApplicationUpdate(app.target, NOTHING_TO_DO, packages, requirements.unpinned)
    updates = result.updates
    if updates:
        result.trial = try_plan(app, [(p.name, p.version) for p in requirements.pins], updates)
        if not result.trial.passed:
            result.outcome = UPDATE_FAILED
            return result
        result.new_requirements = write_requirements(requirements_at_base(app),
                                                     {canonicalize_name(p.name): p.planned for p in updates})
        lines = [f"- {p.name} {p.current} -> {p.planned} ({p.kind})" for p in updates]
        message = (f"deps: {len(updates)} update(s) by tradeops dependency-update\n\n" + "\n".join(lines)
                   + f"\n\nThe application's tests passed after each update ({result.trial.tests_run} runs).\n")
        result.branch, result.commit = commit_pins(app, result.new_requirements, message, author, today)
        result.outcome = UPDATED
    if result.remaining:
        result.outcome = VULNERABILITIES_FOUND
    return result


@task(name="update-application-dependencies")
def update_application_task(app: PythonApplication, author: str, today: date) -> ApplicationUpdate:
    return update_application(app, author, today)
