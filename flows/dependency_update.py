"""dependency-update: monthly dependency updates with a security scan (runbook 001 "Dependency
Management": first Monday 04:00 UTC, conservative; runbooks 003 and 004 monthly updates).

Checklist, for every Python application of the environment (`[[applications]]`):
1. Scan: its pins (`requirements.txt` on the base branch), the versions the index offers (a
   recorded index file) and known vulnerabilities (OSV records, matched as pip-audit does). A file
   that cannot be read: "scan failed", nothing changes.
2. Plan conservatively: each pin to its newest patch release; past that only to fix a known
   vulnerability, and only with `allow_security_updates`.
3. Try it in a scratch virtualenv (pip --no-index from the wheelhouse): the current pins and the
   tests, then each update and the tests again. The first update that fails to install or breaks
   the tests: rolled back (nothing committed), "update failed" naming the package.
4. On success: the new pins committed on `deps/update-<date>` in the application's repository, an
   audit entry, and a change request (runbook 003) to merge it.
5. Count the OS packages apt could upgrade (read-only, from its local lists), where apt is present.
Report: outcome per application ("scan failed", "update failed", "vulnerabilities found",
"updated", "nothing to do"). Failed on the first three.
Needs `dependency.update` (system administrators: the role table's `*`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, Actor, require_permission
from tasks.changes import ChangeTemplate, create_change
from tasks.dependencies.apt import count_upgradable
from tasks.dependencies.report import dependency_markdown, result_dict
from tasks.dependencies.update import ApplicationUpdate, update_application_task
from tasks.environment import LoadedEnvironment, load_environment
from tasks.reporting import final_state, publish_summary, report_denial
from tradeops.store.records import append_audit, current_flow_run_id


@flow(name="dependency-update", **FAILURE_HOOKS)
def dependency_update(environment: str = "default") -> State:
    """Scan, plan, try and commit dependency updates of every application of `environment`."""
    env = load_environment(environment)
    try:
        actor = require_permission(env, permission_for("dependency-update"), "dependency_update")
    except AccessDenied as exc:
        return report_denial("dependency-update", env.name, env.store_url, f"Dependency update {env.name}", str(exc),
                             reports_dir=str(env.block.output_dir("reports")))
    today = datetime.now(timezone.utc).date()
    applications = env.block.applications()
    results = []
    for app in applications:
        result = update_application_task(app, actor.user, today)
        record(env, actor, result)
        results.append(result)
    apt = count_upgradable()
    get_run_logger().info("OS packages: %s", apt.describe())
    markdown = dependency_markdown(env.name, results, apt, {a.target: a.allow_security_updates for a in applications})
    failures = [r.failure() for r in results if r.failure()]
    failure = "; ".join(failures) if failures else None
    result = publish_summary("dependency-update", env.name, env.store_url, markdown, result_dict(env.name, results, apt),
                             failure, reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)


def record(env: LoadedEnvironment, actor: Actor, result: ApplicationUpdate) -> None:
    """The audit entry of one application's update, and for committed pins a change request to merge them."""
    logger = get_run_logger()
    (logger.error if result.failure() else logger.info)("%s: %s", result.target, result.failure() or result.outcome)
    entry = append_audit(
        env.store_url, "dependency_update", actor.user, success=result.failure() is None, repository_hash=result.commit,
        changed_files=["requirements.txt"] if result.commit else [],
        details={"application": result.target, "outcome": result.outcome, "branch": result.branch,
                 "updates": [f"{p.name} {p.current} -> {p.planned} ({p.kind})" for p in result.updates],
                 "vulnerabilities_left": result.remaining, "error": result.error, "role": actor.role,
                 "broken_package": result.trial.broken_package if result.trial else None,
                 "failed_step": result.trial.step if result.trial and not result.trial.passed else None})
    result.audit_entry_id = entry.id
    if not result.commit:
        return
    security = any(p.kind == "security" for p in result.updates)
    updates = "\n".join(f"- {p.name} {p.current} -> {p.planned} ({p.kind})" for p in result.updates)
    template = ChangeTemplate(
        title=f"Dependency updates for {result.target} ({result.branch})", risk="medium" if security else "low",
        description=f"New pins for {result.target}, committed on branch {result.branch} ({result.commit[:12]}):\n"
                    f"{updates}",
        benefits="Current patch releases" + (" and fixes of known vulnerabilities" if security else ""),
        implementation_plan=f"Merge {result.branch} into the base branch and deploy.",
        impacts="The application's tests passed in a scratch virtualenv after each update.",
        rollback_plan="Revert the merge: the previous pins are the base branch's requirements file.")
    request = create_change(env.store_url, env.name, template, actor, source="dependency-update",
                            links={"branch": result.branch, "commit": result.commit, "application": result.target,
                                   "flow_runs": [current_flow_run_id()], "audit_entries": [entry.id]})
    result.change_request = request.number
