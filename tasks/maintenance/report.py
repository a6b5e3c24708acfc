"""The maintenance report as markdown for people, and as flat rows for the ops store."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Mapping, Sequence

from prefect.states import State

from tasks.environment import LoadedEnvironment
from tasks.maintenance.checks.finding import Finding, worst_severity
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary

SEVERITY_MARK = {"ok": "ok", "info": "info", "warn": "**warn**", "critical": "**CRITICAL**", "error": "**ERROR**"}


def _value(value: Any) -> str:
    """Numbers readable in a table cell: thousands separated, floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else " ".join(str(value).split())


def report_markdown(results: Mapping[str, Sequence[Finding]], title: str = "Database maintenance report",
                    level: int = 1) -> str:
    """A summary table (status = the worst finding, count = findings that are not "ok"), then one
    table per check that found something; `level` is the title's heading level."""
    sections = [f"{'#' * level} {title}", markdown_table(
        ["Check", "Status", "Findings"],
        [(name, SEVERITY_MARK[worst_severity(findings)], sum(1 for f in findings if f.severity != "ok"))
         for name, findings in results.items()])]
    for name, findings in results.items():
        if findings:
            sections += [f"{'#' * (level + 1)} {name}", markdown_table(
                ["Severity", "Subject", "Finding", "Value"],
                [(SEVERITY_MARK[f.severity], f.subject, " ".join(f.message.split()), _value(f.value))
                 for f in findings])]
    return "\n\n".join(sections) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def results_as_rows(results: Mapping[str, Sequence[Finding]]) -> list[dict[str, Any]]:
    """One JSON-serialisable dict per finding (details included), in report order; a check without
    findings contributes one "ok" row so the store records that it ran."""
    rows = []
    for name, findings in results.items():
        if not findings:
            rows.append({"check": name, "severity": "ok", "subject": "", "message": f"{name}: no findings",
                         "value": None, "details": {}})
        for f in findings:
            rows.append({"check": f.check, "severity": f.severity, "subject": f.subject, "message": f.message,
                         "value": _jsonable(f.value), "details": _jsonable(f.details)})
    return rows


def publish_maintenance_report(env: LoadedEnvironment, results: list[dict], failures: dict[str, str]) -> State:
    """Per database: pre-flight checks, the statements run (seconds, outcome), post-flight checks and
    the health report after maintenance."""
    sections = [f"# Database maintenance: {env.name}"]
    for result in results:
        sections.append(f"## {result['target']}" + (f"\n\n**Failed:** {result['failure']}" if result["failure"] else ""))
        sections.append("Pre-flight\n\n" + markdown_table(
            ["", "item", "measured", "rule"],
            [(STATUS_ICON["pass" if i["passed"] else "fail"], i["name"], i["measured"], i["rule"])
             for i in result["preflight"]]))
        if result["steps"]:
            sections.append("Statements\n\n" + markdown_table(
                ["statement", "seconds", "outcome"],
                [(f"`{s['statement']}`", f"{s['seconds']:.2f}", s["outcome"]) for s in result["steps"]]))
        if result["postflight"]:
            sections.append("Post-flight\n\n" + markdown_table(
                ["", "item", "measured"],
                [(STATUS_ICON["pass" if i["passed"] else "fail"], i["name"], i["measured"]) for i in result["postflight"]]))
        if result.get("report"):
            sections.append(result["report"])
    failure = ("; ".join(f"{t}: {r}" for t, r in failures.items()) if failures else None)
    result = {"databases": results, "failures": failures}
    result = publish_summary("db-maintenance", env.name, env.store_url, "\n\n".join(sections), result, failure,
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)
