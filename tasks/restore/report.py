"""The restore's report: what came back where, from which source, what it replaced and the
emergency backups taken first; one markdown artifact and the run's result."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect.states import State

from tasks.environment import LoadedEnvironment
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary
from tasks.restore.drills import drill_history, trend_markdown
from tasks.restore.plan import RestorePlan
from tasks.restore.targets import TargetOutcome


@dataclass
class RestoreReport:
    plan: RestorePlan | None = None
    outcomes: list[TargetOutcome] = field(default_factory=list)
    published: list[str] = field(default_factory=list)      # targets put in place
    emergency: dict[str, str] = field(default_factory=dict)  # target -> emergency backup file
    emergency_set: str | None = None                          # the set holding them
    warnings: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)       # local copies replaced by offsite ones
    swept: list[str] = field(default_factory=list)           # leftovers of interrupted restores
    failure: str | None = None

    def result(self) -> dict:
        shown = self.plan.shown() if self.plan else {}
        return {"set_id": self.plan.set_id if self.plan else None,
                "targets": [o.as_dict() | {"destination": shown.get(o.target, ""),
                                           "put_in_place": o.target in self.published} for o in self.outcomes],
                "emergency_backups": self.emergency, "emergency_set": self.emergency_set,
                "warnings": self.warnings, "fallbacks": self.fallbacks,
                "manifest_problems": self.plan.manifest_problems if self.plan else [], "swept": self.swept}


def restore_markdown(environment: str, report: RestoreReport) -> str:
    plan = report.plan
    shown = plan.shown() if plan else {}
    rows = [(STATUS_ICON["pass" if o.passed else "fail"], o.target, shown.get(o.target, ""),
             "yes" if o.target in report.published else "no", f"{o.bytes:,}", f"{o.rto_seconds:.2f}",
             "; ".join(o.problems)) for o in report.outcomes]
    return "\n\n".join(filter(None, [
        f"# Restore of {plan.set_id if plan else 'no set'} ({environment})",
        f"**Failed:** {report.failure}" if report.failure else "",
        f"Read from: {plan.sources.described}" if plan else "",
        markdown_table(["", "target", "restored into", "in place", "bytes", "seconds", "problems"], rows)
        if rows else "",
        "## Local copies that failed their checks\n\n" + "\n".join(f"- {f}" for f in report.fallbacks)
        if report.fallbacks else "",
        "## Manifest problems\n\n" + "\n".join(f"- {p}" for p in plan.manifest_problems)
        if plan and plan.manifest_problems else "",
        f"## Emergency backups taken first: set `{report.emergency_set}`\n\n"
        + markdown_table(["target", "file"], report.emergency.items()) if report.emergency else "",
        "## Warnings\n\n" + "\n".join(f"- {w}" for w in report.warnings) if report.warnings else "",
        "## Leftovers of an interrupted restore, removed\n\n" + "\n".join(f"- {s}" for s in report.swept)
        if report.swept else "",
    ]))


def publish_restore_report(env: LoadedEnvironment, report: RestoreReport) -> State:
    result = publish_summary("restore", env.name, env.store_url, restore_markdown(env.name, report), report.result(),
                             report.failure, reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, report.failure)


# -- the DR drill ---------------------------------------------------------------------------------
def drill_failure(set_id: str | None, outcomes: list[dict], failure: str | None) -> str | None:
    """The drill's failure: the run's own, then every failed target's problems; None: it passed."""
    failed = [o for o in outcomes if not o["passed"]]
    if failed:
        failure = "; ".join(filter(None, [failure] + ["; ".join(o["problems"]) for o in failed]))
    if not outcomes and not failure:
        failure = f"set {set_id} holds no artifacts"
    return failure


def publish_drill_report(env: LoadedEnvironment, set_id: str | None, rto: float | None, rpo: float | None,
                         outcomes: list[dict], failure: str | None) -> State:
    """RTO and RPO, a row per target (bytes, fetch/restore/check seconds, problems), the trend of
    past drills."""
    passed = failure is None
    rows = [(STATUS_ICON["pass" if o["passed"] else "fail"], o["target"], f"{o.get('bytes', 0):,}",
             _seconds(o.get("fetch_seconds")), _seconds(o.get("restore_seconds")), _seconds(o.get("check_seconds")),
             _seconds(o.get("rto_seconds")), "; ".join(o["problems"])) for o in outcomes]
    markdown = "\n\n".join(filter(None, [
        f"# DR drill {env.name}: {'passed' if passed else 'FAILED'}",
        f"Set `{set_id}` restored from offsite into scratch resources (all dropped afterwards). "
        f"**RTO {_seconds(rto)} s**, **RPO {rpo / 3600:.1f} h**." if rto is not None and rpo is not None else "",
        f"**Failed:** {failure}" if failure else "",
        markdown_table(["", "target", "bytes", "fetch s", "restore s", "check s", "RTO s", "problems"], rows)
        if rows else "",
        "## Trend of past drills\n\n" + trend_markdown(drill_history(env.store_url, env.name)),
    ]))
    result = {"passed": passed, "set_id": set_id, "rto_seconds": rto, "rpo_seconds": rpo, "targets": outcomes}
    result = publish_summary("dr-drill", env.name, env.store_url, markdown, result, failure,
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)


def _seconds(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else ""
