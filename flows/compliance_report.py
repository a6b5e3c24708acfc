"""compliance-report: SOX 404 and FINRA 15c3-5 evidence for a period (runbook 000 "Regulatory
Compliance Management"). Monthly (previous month, the 1st at 06:00 UTC) and quarterly (previous
quarter, the 1st of Jan/Apr/Jul/Oct at 07:00); on demand with `--set period=2026-10` or `2026-Q3`.

1. SOX 404 from the audit trail: operations by type and by user, strategies modified, approvals,
   failed operations, and the audit chain verified over the period.
2. FINRA 15c3-5 from the experiments: every experiment's capital against the 10% / 5% limits,
   experiments promoted without a statistical validation or despite its result.
3. Evidence (tasks/compliance/evidence.py): new files every run (the flow run id in each name,
   never replacing an earlier run's), each stating the period and whether it is complete or
   partial, when and for whom it was generated, the flow run and the audit chain head it was
   computed from; detail files every count expands to (the audit entries, the evaluations), each
   row linked to its flow run; the markdown report; a manifest of their SHA-256 hashes, whose own
   hash goes into the audit trail. All copied offsite, never overwriting (Object Lock for 7 years
   where the bucket has it).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect import flow
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.audit.exports import AUDIT_RETENTION_DAYS
from tasks.audit.verify import verify_chain
from tasks.backup.offsite import publish_offsite
from tasks.compliance.evidence import ENTRY_COLUMNS, EvidenceWriter, Provenance, chain_head, period_entries
from tasks.compliance.finra import finra_report
from tasks.compliance.period import Period, parse_period
from tasks.compliance.report import compliance_markdown, compliance_problems
from tasks.compliance.sox import sox_report
from tasks.environment import LoadedEnvironment, load_environment
from tradeops.files import sha256_file
from tasks.reporting import final_state, flow_run_linker, publish_summary, report_denial
from tradeops.store.records import append_audit, current_flow_run_id


@flow(name="compliance-report", **FAILURE_HOOKS)
def compliance_report(environment: str = "default", period: str = "previous-month") -> State:
    env = load_environment(environment)
    span = parse_period(period)
    try:
        actor = require_permission(env, permission_for("compliance-report"), "compliance_report")
    except AccessDenied as exc:
        return report_denial("compliance-report", env.name, env.store_url, f"Compliance report {span.label}: {env.name}",
                             str(exc))
    head = chain_head(env.store_url)  # what the report is computed from: nothing appended later is counted
    run_id = current_flow_run_id()
    provenance = Provenance.of(env.name, span, actor.user, run_id, head, datetime.now(timezone.utc))
    sox = sox_report(env.store_url, span, through_id=head.id if head else 0)
    sox.chain = chain_verification(env.store_url, span)
    finra = finra_report(env.store_url, env.name, span)
    writer = EvidenceWriter(env.block.output_dir("reports", f"compliance-{span.label}"), run_id or "local",
                            provenance)
    detail_files = write_files(writer, span, sox, finra, env.store_url, head)
    markdown = compliance_markdown(provenance, sox, finra, detail_files)
    report = writer.markdown("compliance-report", markdown)
    manifest, manifest_sha256 = writer.manifest()
    uploaded = copy_offsite(env, span.label, writer.paths)
    failure = compliance_problems(sox, finra)
    append_audit(env.store_url, "compliance_report", actor.user, success=failure is None,
                 details={"period": span.label, "status": provenance.status, "chain_intact": sox.chain["intact"],
                          "chain_head": asdict(head) if head else None, "violations": len(finra.violations),
                          "manifest": manifest.name, "manifest_sha256": manifest_sha256,
                          "files": len(writer.paths), "offsite": uploaded["prefix"] if uploaded else None})
    return report_compliance(env, provenance, sox, finra, markdown, writer.paths, report, manifest_sha256,
                             uploaded, failure)


def chain_verification(store_url: str, span) -> dict:
    """The audit chain over the period (tasks/audit/verify.py): intact, or the first break."""
    report = verify_chain(store_url, span.start, span.end)
    return {**report.to_dict(), "summary": report.summary()}


def write_files(writer: EvidenceWriter, span: Period, sox, finra, store_url: str, head) -> dict[str, str]:  # noqa: ANN001
    """The JSON and CSV files, the detail files every count expands to among them; returns the
    detail files' names."""
    link = flow_run_linker()
    for violation in finra.violations:
        for item in violation["evidence"]:
            item["flow_run_link"] = link(item["flow_run_id"])
    for entry in sox.failed_operations + sox.approvals:
        entry["flow_run_link"] = link(entry["flow_run_id"])
    for evaluation in finra.evaluations:
        evaluation["flow_run_link"] = link(evaluation["flow_run_id"])
    writer.json("sox-404", asdict(sox))
    writer.csv("sox-404-operations", ["name", "count", "failed"], sox.by_operation)
    writer.csv("sox-404-users", ["name", "count", "failed"], sox.by_user)
    writer.csv("sox-404-failed", ["id", "timestamp", "operation", "user", "strategy", "flow_run_id", "flow_run_link"],
               sox.failed_operations)
    entries = writer.csv("sox-404-entries", ENTRY_COLUMNS,
                         period_entries(store_url, span, head.id if head else None))
    writer.json("finra-15c3-5", asdict(finra))
    writer.csv("finra-15c3-5-experiments", ["id", "experiment", "strategy", "status", "capital_pct", "strategy_arm_pct",
                                            "split", "conclusion", "evaluations", "compliant"], finra.experiments)
    evaluations = writer.csv("finra-15c3-5-evaluations", ["experiment_id", "experiment", "evaluation_id",
                                                          "evaluated_at", "decision", "p_value", "n_control",
                                                          "n_variant", "flow_run_id", "flow_run_link"],
                             finra.evaluations)
    writer.csv("finra-15c3-5-violations", ["experiment_id", "experiment", "strategy", "kind", "finding", "flow_runs"],
               [{**v, "flow_runs": " ".join(filter(None, (e["flow_run_link"] for e in v["evidence"])))}
                for v in finra.violations])
    return {"entries": entries.name, "evaluations": evaluations.name}


def copy_offsite(env: LoadedEnvironment, label: str, files: list[Path]) -> dict | None:
    """Every file, the markdown and the manifest included, under `compliance/<env>/<period>/`, each
    checked after upload and never overwriting an object (Object Lock for 7 years where the bucket has it)."""
    storage = env.block.offsite()
    if storage is None:
        return None
    until = datetime.now(timezone.utc) + timedelta(days=AUDIT_RETENTION_DAYS)
    prefix = f"compliance/{env.name}/{label}/"
    keys = [publish_offsite(storage, path, prefix + path.name, sha256_file(path), path.stat().st_size,
                            retain_until=until) for path in files]
    locked = storage.object_lock_enabled()
    return {"prefix": prefix, "keys": keys, "object_lock": locked, "retain_until": until.isoformat() if locked else None,
            "storage": storage.describe()}


def report_compliance(env: LoadedEnvironment, provenance: Provenance, sox, finra, markdown: str, files: list[Path],
                      report: Path, manifest_sha256: str, uploaded: dict | None, failure: str | None) -> State:
    where = (f"offsite under `{uploaded['prefix']}` ({uploaded['storage']}; "
             + (f"Object Lock (compliance) until {uploaded['retain_until'][:10]})" if uploaded["object_lock"]
                else "no Object Lock on this storage)") if uploaded else "not copied offsite (no [offsite] storage)")
    summary = "\n\n".join([markdown, f"Files ({len(files)}, manifest SHA-256 `{manifest_sha256}`, recorded in the "
                                     f"audit trail): " + ", ".join(f"`{p.name}`" for p in files) + f"; {where}."])
    result = {"period": provenance.period, "evidence": provenance.to_dict(),
              "sox": {"total": sox.total, "failed": sox.failed, "chain": sox.chain},
              "finra": {"experiments": len(finra.experiments), "violations": finra.violations},
              "files": [str(p) for p in files], "report": str(report), "manifest_sha256": manifest_sha256,
              "offsite": uploaded}
    result = publish_summary("compliance-report", env.name, env.store_url, summary, result, failure)
    return final_state(result, failure)
