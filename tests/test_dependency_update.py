"""dependency-update on the sandbox's pricing-service: real git, real virtualenvs, real pip
(offline, from the sandbox's wheelhouse), the application's real pytest tests.

Planted by the sandbox: tickfmt 1.4.0 (patches 1.4.1, 1.4.2), riskcalc 2.1.0 (SANDBOX-2026-0001,
fixed in 2.2.0; its patch 2.1.1 is still affected), quotebus 3.0.2 (current).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest
from packaging.version import Version
from sqlmodel import select

from conftest import apply_as_own_environment, run_flow
from flows.dependency_update import dependency_update
from tasks.dependencies.scan import ScanFailed, parse_record, read_advisories, vulnerabilities_of
from tradeops.sandbox.applications import TICKFMT, advisory
from tradeops.sandbox.wheels import build_wheel
from tradeops.store import AuditEntry, ChangeRequest, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


@pytest.fixture
def deps_env(pg_sandbox, tmp_path):
    """The sandbox with a private copy of its apps/ (branches are committed there)."""
    platform, config = pg_sandbox
    apps = tmp_path / "apps"
    shutil.copytree(platform.directory / "apps", apps)

    def apply(**settings):
        overrides = [("applications.pricing-service.path", str(apps / "pricing-service")),
                     ("applications.pricing-service.wheelhouse", str(apps / "wheelhouse")),
                     ("applications.pricing-service.index_versions_file", str(apps / "index" / "versions.json")),
                     ("applications.pricing-service.advisories_file", str(apps / "advisories" / "osv.json")),
                     *[(f"applications.pricing-service.{k}", v) for k, v in settings.items()]]
        return apply_as_own_environment(config, tmp_path, "deps", overrides)

    return apps, apply


def pins_on(repo_path: Path, ref: str) -> dict[str, str]:
    repo = pygit2.Repository(str(repo_path))
    commit = repo.revparse_single(ref).peel(pygit2.Commit)
    text = repo[commit.tree["requirements.txt"].id].data.decode()
    return dict(line.split("==") for line in text.splitlines() if "==" in line and not line.startswith("#"))


def branches(repo_path: Path) -> list[str]:
    return sorted(b for b in pygit2.Repository(str(repo_path)).branches.local if b.startswith("deps/"))


def audits(store: str, operation: str) -> list[AuditEntry]:
    with session_for(store) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.operation == operation)).all())


def apt_count() -> int | None:
    """An independent count: apt's own listing, lines that say they are upgradable."""
    apt = shutil.which("apt")
    if apt is None:
        return None
    listed = subprocess.run([apt, "list", "--upgradable"], capture_output=True, text=True, env={"LC_ALL": "C",
                                                                                                "PATH": "/usr/bin:/bin"})
    return sum("upgradable from" in line for line in listed.stdout.splitlines())


ORIGINAL = {"quotebus": "3.0.2", "riskcalc": "2.1.0", "tickfmt": "1.4.0"}


def test_patch_updates_are_committed_on_a_branch_and_a_vulnerability_left_is_reported(deps_env):
    apps, apply = deps_env
    name, store = apply()
    app = apps / "pricing-service"
    working_copy = (app / "requirements.txt").read_text()
    state, result = run_flow(dependency_update, environment=name)
    assert state.is_failed() and "vulnerabilities found: riskcalc 2.1.1: SANDBOX-2026-0001" in state.message
    [application] = result["applications"]
    assert application["outcome"] == "vulnerabilities found" == result["outcome"]
    assert application["updates"] == [{"package": "riskcalc", "from": "2.1.0", "to": "2.1.1", "kind": "patch"},
                                      {"package": "tickfmt", "from": "1.4.0", "to": "1.4.2", "kind": "patch"}]
    assert {v["id"] for v in application["vulnerabilities"]} == {"SANDBOX-2026-0001"}
    assert {o["package"]: o["latest"] for o in application["outdated"]} == {"riskcalc": "2.2.0", "tickfmt": "2.0.0"}

    # the pins on the branch; main and the working copy untouched
    branch = application["branch"]
    assert branch.startswith("deps/update-") and branches(app) == [branch]
    assert pins_on(app, branch) == {"quotebus": "3.0.2", "riskcalc": "2.1.1", "tickfmt": "1.4.2"}
    assert pins_on(app, "main") == ORIGINAL and (app / "requirements.txt").read_text() == working_copy
    assert str(pygit2.Repository(str(app)).revparse_single(branch).id) == application["commit"]

    # audited, and a change request to merge the branch, linked to both
    [entry] = audits(store, "dependency_update")
    details = json.loads(entry.details)
    assert (entry.success, entry.repository_hash, details["branch"]) == (False, application["commit"], branch)
    assert json.loads(entry.changed_files) == ["requirements.txt"]
    with session_for(store) as session:
        [request] = session.exec(select(ChangeRequest).where(ChangeRequest.environment == name)).all()
    links = json.loads(request.links_json)
    assert (request.number, request.status, request.source, request.risk) == (
        application["change_request"], "submitted", "dependency-update", "low")
    assert links["branch"] == branch and links["commit"] == application["commit"] and entry.id in links["audit_entries"]

    # the report says it, and counts apt's upgradable packages where apt is present
    report = Path(result["report"]).read_text()
    assert "vulnerabilities found" in report and "SANDBOX-2026-0001" in report and branch in report
    expected = apt_count()
    assert result["apt"]["upgradable"] == expected and result["apt"]["present"] == (expected is not None)
    assert (f"apt: {expected} upgradable" if expected is not None else "apt not present") in report

    # a second run the same day takes the next branch name
    state, result = run_flow(dependency_update, environment=name)
    assert result["applications"][0]["branch"] == f"{branch}-2"


def test_security_updates_go_past_the_patch_level_when_allowed(deps_env):
    apps, apply = deps_env
    name, store = apply(allow_security_updates=True)
    state, result = run_flow(dependency_update, environment=name)
    assert state.is_completed(), state.message
    [application] = result["applications"]
    assert application["outcome"] == "updated" and application["remaining_vulnerabilities"] == []
    assert {u["package"]: (u["to"], u["kind"]) for u in application["updates"]} == {
        "riskcalc": ("2.2.0", "security"), "tickfmt": ("1.4.2", "patch")}
    assert pins_on(apps / "pricing-service", application["branch"])["riskcalc"] == "2.2.0"
    with session_for(store) as session:
        [request] = session.exec(select(ChangeRequest).where(ChangeRequest.environment == name)).all()
    assert request.risk == "medium"  # past the patch level


def test_an_update_that_breaks_the_tests_is_rolled_back_naming_the_package(deps_env):
    apps, apply = deps_env
    # plant tickfmt 1.4.3: a patch release that drops the thousands separator
    build_wheel(apps / "wheelhouse", "tickfmt", "1.4.3", {"tickfmt/__init__.py": TICKFMT.format(version="1.4.3")
                                                          .replace("{value:,.", "{value:.")})
    index = json.loads((apps / "index" / "versions.json").read_text())
    index["packages"]["tickfmt"].append("1.4.3")
    (apps / "index" / "versions.json").write_text(json.dumps(index))
    name, store = apply(allow_security_updates=True)
    state, result = run_flow(dependency_update, environment=name)
    assert state.is_failed()
    [application] = result["applications"]
    assert application["outcome"] == "update failed" and application["broken_package"] == "tickfmt"
    assert application["failed_step"] == "tests after tickfmt 1.4.0 -> 1.4.3"
    assert "tickfmt broke it" in state.message and "rolled back" in state.message
    assert branches(apps / "pricing-service") == [] and application["branch"] is None
    assert pins_on(apps / "pricing-service", "main") == ORIGINAL
    report = Path(result["report"]).read_text()
    assert "**tickfmt** broke it" in report and "1,234.60" in report  # the failing assertion, from pytest
    [entry] = audits(store, "dependency_update")
    assert entry.success is False and json.loads(entry.details)["broken_package"] == "tickfmt"
    with session_for(store) as session:
        assert session.exec(select(ChangeRequest).where(ChangeRequest.environment == name)).all() == []


def test_a_version_the_wheelhouse_lacks_fails_its_install_and_is_named(deps_env):
    apps, apply = deps_env
    index = json.loads((apps / "index" / "versions.json").read_text())
    index["packages"]["quotebus"].append("3.0.9")  # the index lists it, the wheelhouse has no wheel of it
    (apps / "index" / "versions.json").write_text(json.dumps(index))
    name, store = apply(allow_security_updates=True)
    state, result = run_flow(dependency_update, environment=name)
    [application] = result["applications"]
    assert (application["outcome"], application["broken_package"], application["failed_step"]) == (
        "update failed", "quotebus", "install quotebus 3.0.2 -> 3.0.9")
    assert branches(apps / "pricing-service") == []


def test_a_corrupt_advisories_file_is_a_scan_failure_naming_it(deps_env):
    apps, apply = deps_env
    advisories = apps / "advisories" / "osv.json"
    advisories.write_text('[{"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "riskcalc"}, '
                          '"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]}]}]')
    name, store = apply()
    state, result = run_flow(dependency_update, environment=name)
    assert state.is_failed()
    [application] = result["applications"]
    assert application["outcome"] == "scan failed" and str(advisories) in application["error"]
    assert "record 0 (X-1)" in application["error"] and application["updates"] == []
    assert branches(apps / "pricing-service") == []
    advisories.write_text("{truncated")
    state, result = run_flow(dependency_update, environment=name)
    assert result["applications"][0]["outcome"] == "scan failed"
    assert f"{advisories}: advisories are not readable JSON" in state.message


def test_nothing_to_do_when_every_pin_is_current_and_clean(deps_env):
    apps, apply = deps_env
    (apps / "index" / "versions.json").write_text(json.dumps({"packages": {k: [v] for k, v in ORIGINAL.items()}}))
    (apps / "advisories" / "osv.json").write_text("[]")
    name, store = apply()
    state, result = run_flow(dependency_update, environment=name)
    assert state.is_completed() and result["outcome"] == "nothing to do"
    assert branches(apps / "pricing-service") == [] and len(audits(store, "dependency_update")) == 1


# -- OSV matching, against ranges written out by hand ------------------------------------------------

@pytest.mark.parametrize("version, affected", [
    ("0.9", False), ("1.0", True), ("1.4.9", True), ("1.5.0", False), ("1.9", False), ("2.0", True), ("2.1.3", True),
    ("2.1.4", False), ("3.0", False),
])
def test_osv_ranges_introduced_fixed_and_last_affected(version, affected):
    record = advisory("pkg", "1.0", "1.5.0", "OSV-1", "two ranges")
    record["affected"][0]["ranges"].append({"type": "ECOSYSTEM", "events": [{"introduced": "2.0"},
                                                                            {"last_affected": "2.1.3"}]})
    record["affected"].append({"package": {"ecosystem": "npm", "name": "pkg"},
                               "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]})
    [parsed] = parse_record(record)
    assert parsed.affects(Version(version)) is affected
    assert bool(vulnerabilities_of("PKG", version, [parsed])) is affected  # names compare canonicalised


def test_osv_files_in_the_query_api_shape_and_explicit_versions(tmp_path):
    path = tmp_path / "osv.json"
    record = advisory("pkg", "0", "9.9", "OSV-2", "listed")
    record["affected"][0]["ranges"] = []
    record["affected"][0]["versions"] = ["1.2.3"]
    path.write_text(json.dumps({"vulns": [record]}))
    [parsed] = read_advisories(path)
    assert parsed.affects(Version("1.2.3")) and not parsed.affects(Version("1.2.4"))
    path.write_text(json.dumps({"vulns": "no"}))
    with pytest.raises(ScanFailed, match="expected a JSON array"):
        read_advisories(path)
