"""compliance-report: SOX 404 and FINRA 15c3-5 evidence for a period (runbook 000 "Regulatory
Compliance Management"). Monthly (previous month, the 1st at 06:00 UTC) and quarterly (previous
quarter, the 1st of Jan/Apr/Jul/Oct at 07:00); on demand with `--set period=2026-10` or `2026-Q3`.

1. SOX 404 from the audit trail: operations by type and by user, strategies modified, approvals,
   failed operations, and the audit chain verified over the period.
2. FINRA 15c3-5 from the experiments: every experiment's capital against the 10% / 5% limits,
   experiments promoted without a statistical validation or despite its result.
3. JSON and CSV files and a markdown summary; copied offsite (Object Lock for 7 years where the
   bucket has it). Each finding names the flow runs behind its evidence, linked to the Prefect UI.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect import flow
from prefect.states import State

from tasks.access import FLOW_PERMISSIONS, AccessDenied, require_permission
from tasks.audit.exports import AUDIT_RETENTION_DAYS
from tasks.compliance.finra import finra_report
from tasks.compliance.period import parse_period
from tasks.compliance.sox import sox_report
from tasks.environment import LoadedEnvironment, load_environment
from tasks.failure_alerts import FAILURE_HOOKS
from tasks.files import atomic_write_text, sha256_file
from tasks.reporting import final_state, flow_run_link, markdown_table, publish_summary, report_denial
from tradeops.store.records import append_audit


@flow(name="compliance-report", **FAILURE_HOOKS)
def compliance_report(environment: str = "default", period: str = "previous-month") -> State:
    env = load_environment(environment)
    span = parse_period(period)
    try:
        actor = require_permission(env, FLOW_PERMISSIONS["compliance-report"], "compliance_report")
    except AccessDenied as exc:
        return report_denial("compliance-report", env.name, env.store_url, f"Compliance report {span.label}: {env.name}",
                             str(exc))
    sox = sox_report(env.store_url, span)
    sox.chain = chain_verification(env.store_url, span)
    finra = finra_report(env.store_url, env.name, span)
    folder = env.block.output_dir("reports", f"compliance-{span.label}")
    files = write_files(folder, sox, finra)
    uploaded = copy_offsite(env, span.label, files)
    state = report_compliance(env, span.label, sox, finra, files, uploaded)
    append_audit(env.store_url, "compliance_report", actor.user, success=state.is_completed(),
                 details={"period": span.label, "chain_intact": sox.chain["intact"],
                          "violations": len(finra.violations), "offsite": uploaded})
    return state


def chain_verification(store_url: str, span) -> dict:
    """The audit chain over the period (tasks/audit/verify.py): intact, or the first break."""
    from tasks.audit.verify import verify_chain

    report = verify_chain(store_url, span.start, span.end)
    return {**report.to_dict(), "summary": report.summary()}


def _csv(rows: list[dict], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_files(folder: Path, sox, finra) -> list[Path]:
    for violation in finra.violations:
        for item in violation["evidence"]:
            item["flow_run_link"] = flow_run_link(item["flow_run_id"])
    for entry in sox.failed_operations + sox.approvals:
        entry["flow_run_link"] = flow_run_link(entry["flow_run_id"])
    files = {
        "sox-404.json": json.dumps(asdict(sox), indent=2, default=str),
        "sox-404-operations.csv": _csv(sox.by_operation, ["name", "count", "failed"]),
        "sox-404-users.csv": _csv(sox.by_user, ["name", "count", "failed"]),
        "sox-404-failed.csv": _csv(sox.failed_operations, ["id", "timestamp", "operation", "user", "strategy",
                                                           "flow_run_id", "flow_run_link"]),
        "finra-15c3-5.json": json.dumps(asdict(finra), indent=2, default=str),
        "finra-15c3-5-experiments.csv": _csv(finra.experiments, ["id", "experiment", "strategy", "status",
                                                                 "capital_pct", "strategy_arm_pct", "split",
                                                                 "conclusion", "evaluations", "compliant"]),
        "finra-15c3-5-violations.csv": _csv(
            [{**v, "flow_runs": " ".join(filter(None, (e["flow_run_link"] for e in v["evidence"])))}
             for v in finra.violations], ["experiment_id", "experiment", "strategy", "kind", "finding", "flow_runs"]),
    }
    paths = []
    for name, text in files.items():
        atomic_write_text(folder / name, text)
        paths.append(folder / name)
    return paths


def copy_offsite(env: LoadedEnvironment, label: str, files: list[Path]) -> list[str]:
    storage = env.block.offsite()
    if storage is None:
        return []
    retain_until = datetime.now(timezone.utc) + timedelta(days=AUDIT_RETENTION_DAYS)
    keys = []
    for path in files:
        key = f"compliance/{env.name}/{label}/{path.name}"
        storage.upload_file(path, key, sha256=sha256_file(path), retain_until=retain_until)
        keys.append(key)
    return keys


def report_compliance(env: LoadedEnvironment, label: str, sox, finra, files: list[Path], uploaded: list[str]) -> State:
    chain_ok = sox.chain["intact"]
    sections = [
        f"# Compliance report {label}: {env.name}",
        "## SOX 404",
        f"{sox.total} audited operations, {sox.failed} failed. Audit chain over the period: "
        + ("**intact**" if chain_ok else "**BROKEN**") + f" ({sox.chain['summary']})",
        "By operation\n\n" + markdown_table(["operation", "count", "failed"],
                                            [(r["name"], r["count"], r["failed"]) for r in sox.by_operation]),
        "By user\n\n" + markdown_table(["user", "count", "failed"],
                                       [(r["name"], r["count"], r["failed"]) for r in sox.by_user]),
    ]
    if sox.strategies_modified:
        sections.append("Strategies modified\n\n" + markdown_table(
            ["strategy", "operation", "count"],
            [(r["strategy"], r["operation"], r["count"]) for r in sox.strategies_modified]))
    if sox.approvals:
        sections.append("Approvals\n\n" + markdown_table(
            ["when", "user", "strategy", "version"],
            [(a["timestamp"][:19], a["user"], a["strategy"], a["version"]) for a in sox.approvals]))
    if sox.failed_operations:
        sections.append("Failed operations\n\n" + markdown_table(
            ["id", "when", "operation", "user", "flow run"],
            [(f["id"], f["timestamp"][:19], f["operation"], f["user"], f["flow_run_link"] or "")
             for f in sox.failed_operations]))
    sections.append("## FINRA 15c3-5")
    sections.append(markdown_table(
        ["experiment", "strategy", "status", "capital %", "largest arm % of strategy", "compliant"],
        [(e["experiment"], e["strategy"], e["status"], f"{e['capital_pct']:.2f}", f"{e['strategy_arm_pct']:.2f}",
          "yes" if e["compliant"] else "**no**") for e in finra.experiments]) if finra.experiments
        else "No experiment was active in the period.")
    if finra.violations:
        sections.append("Violations\n\n" + markdown_table(
            ["experiment", "kind", "finding", "evidence (flow runs)"],
            [(v["experiment"], v["kind"], v["finding"],
              " ".join(f"[{e['flow_run_id'][:8]}]({e['flow_run_link']})" for e in v["evidence"] if e["flow_run_id"]))
             for v in finra.violations]))
    sections.append("Files: " + ", ".join(f"`{p.name}`" for p in files)
                    + (f"; offsite under `compliance/{env.name}/{label}/`" if uploaded else ""))
    problems = ([] if chain_ok else ["audit chain broken"]) + [f"{v['experiment']}: {v['finding']}"
                                                               for v in finra.violations]
    failure = "; ".join(problems) or None
    result = {"period": label, "sox": {"total": sox.total, "failed": sox.failed, "chain": sox.chain},
              "finra": {"experiments": len(finra.experiments), "violations": finra.violations},
              "files": [str(p) for p in files], "offsite": uploaded}
    result = publish_summary("compliance-report", env.name, env.store_url, "\n\n".join(sections), result, failure,
                             reports_dir=str(files[0].parent))
    return final_state(result, failure)
