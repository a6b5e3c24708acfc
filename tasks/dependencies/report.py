"""The dependency-update report: the outcome per application, every pin with what the index
offers, known vulnerabilities and what the plan did, the trial, the branch and change request,
and the OS packages apt could upgrade."""

from __future__ import annotations

from typing import Any

from tasks.dependencies.apt import AptStatus
from tasks.dependencies.update import ApplicationUpdate, worst_outcome
from tasks.reporting import markdown_table

OUTCOME_MARK = {"scan failed": "❌ scan failed", "update failed": "❌ update failed",
                "vulnerabilities found": "⚠️ vulnerabilities found", "updated": "✅ updated",
                "nothing to do": "✅ nothing to do"}


def dependency_markdown(environment: str, results: list[ApplicationUpdate], apt: AptStatus,
                        allow: dict[str, bool]) -> str:
    outcome = worst_outcome([r.outcome for r in results])
    sections = [f"# Dependency update {environment}: {outcome}"]
    failures = [r.failure() for r in results if r.failure()]
    if failures:
        sections.append("**Failed:** " + "; ".join(failures))
    sections.append(markdown_table(
        ["application", "outcome", "updates", "vulnerabilities left", "branch", "change request"],
        [(r.target, OUTCOME_MARK[r.outcome], len(r.updates), len(r.remaining), r.branch or "",
          r.change_request or "") for r in results]) if results else "No application configured ([[applications]]).")
    for result in results:
        sections.append(application_section(result, allow.get(result.target, False)))
    sections.append(f"## OS packages\n\napt: {apt.describe()}" + (f"; {apt.detail}" if apt.present else ""))
    sections.append("Vulnerabilities come from the configured OSV advisories file and versions from the recorded "
                    "index file (pip-audit's matching, read offline); patch updates only unless "
                    "`allow_security_updates` (runbook 001: conservative).")
    return "\n\n".join(sections)


def application_section(result: ApplicationUpdate, allow_security: bool) -> str:
    lines = [f"## {result.target}: {result.outcome}"]
    if result.error:
        lines.append(f"**Scan failed:** {result.error}. Nothing was planned or changed.")
        return "\n\n".join(lines)
    rows = [(p.name, p.current, p.latest or "not in the index", p.newest_patch or "",
             ", ".join(f"{v.id} ({v.severity}; fixed in {', '.join(v.fix_versions) or 'no release'})"
                       for v in p.vulnerabilities),
             f"{p.planned} ({p.kind})" if p.planned else "", ", ".join(v.id for v in p.remaining), p.note)
            for p in result.packages]
    lines.append(markdown_table(["package", "pinned", "latest", "newest patch", "known vulnerabilities", "planned",
                                 "still vulnerable", "note"], rows))
    if result.unpinned:
        lines.append("Not pinned (left alone): " + ", ".join(f"`{u}`" for u in result.unpinned))
    trial = result.trial
    if trial is not None and not trial.passed:
        culprit = f"**{trial.broken_package}** broke it" if trial.broken_package else "before any update"
        lines.append(f"**Rolled back:** failed at '{trial.step}' ({culprit}); the requirements are unchanged and "
                     f"nothing was committed.\n\n```\n{trial.output.strip()}\n```")
    elif trial is not None:
        lines.append(f"Tried in a scratch virtualenv: the application's tests passed before and after each update "
                     f"({trial.tests_run} runs). New pins on branch `{result.branch}` ({(result.commit or '')[:12]}), "
                     f"change request {result.change_request}.")
    if not allow_security and any(p.remaining and "allow_security_updates" in p.note for p in result.packages):
        lines.append("Set `allow_security_updates = true` for this application to update past the patch level "
                     "where that fixes a vulnerability.")
    return "\n\n".join(lines)


def result_dict(environment: str, results: list[ApplicationUpdate], apt: AptStatus) -> dict[str, Any]:
    return {
        "environment": environment, "outcome": worst_outcome([r.outcome for r in results]),
        "applications": [{
            "target": r.target, "outcome": r.outcome, "error": r.error, "branch": r.branch, "commit": r.commit,
            "change_request": r.change_request, "audit_entry_id": r.audit_entry_id, "unpinned": r.unpinned,
            "broken_package": r.trial.broken_package if r.trial else None,
            "failed_step": r.trial.step if r.trial and not r.trial.passed else None,
            "updates": [{"package": p.name, "from": p.current, "to": p.planned, "kind": p.kind} for p in r.updates],
            "vulnerabilities": [{"package": v.package, "version": v.version, "id": v.id, "severity": v.severity,
                                 "fix_versions": list(v.fix_versions)} for p in r.packages for v in p.vulnerabilities],
            "remaining_vulnerabilities": r.remaining,
            "outdated": [{"package": p.name, "current": p.current, "latest": p.latest} for p in r.packages
                         if p.outdated],
        } for r in results],
        "apt": {"present": apt.present, "upgradable": apt.upgradable, "detail": apt.detail},
    }
