"""The compliance report people read: its provenance first, then SOX 404 and FINRA 15c3-5 as
tables, each finding linked to the flow runs behind it, and where every count expands."""

from __future__ import annotations

from tasks.compliance.evidence import Provenance
from tasks.reporting import markdown_table


def compliance_markdown(provenance: Provenance, sox, finra, detail_files: dict[str, str]) -> str:  # noqa: ANN001
    """`detail_files`: the names of the detail files ("entries", "evaluations") the counts expand to."""
    chain_ok = sox.chain["intact"]
    title = f"# Compliance report {provenance.period}: {provenance.environment}"
    if not provenance.complete:
        title += " (PARTIAL: the period is not over)"
    sections = [
        title,
        markdown_table(["", ""], provenance.statements()),
        "## SOX 404",
        f"{sox.total} audited operations, {sox.failed} failed. Audit chain over the period: "
        + ("**intact**" if chain_ok else "**BROKEN**") + f" ({sox.chain['summary']})",
        f"Every count below expands to its entries in `{detail_files['entries']}` (one row per entry: filter by "
        "operation, user, strategy or success), each with the link to its flow run.",
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
            ["entry", "when", "user", "strategy", "version", "flow run"],
            [(a["id"], a["timestamp"][:19], a["user"], a["strategy"], a["version"], a["flow_run_link"] or "")
             for a in sox.approvals]))
    if sox.failed_operations:
        sections.append("Failed operations\n\n" + markdown_table(
            ["entry", "when", "operation", "user", "flow run"],
            [(f["id"], f["timestamp"][:19], f["operation"], f["user"], f["flow_run_link"] or "")
             for f in sox.failed_operations]))
    sections.append("## FINRA 15c3-5")
    sections.append(markdown_table(
        ["experiment", "strategy", "status", "capital %", "largest arm % of strategy", "evaluations", "compliant"],
        [(e["experiment"], e["strategy"], e["status"], f"{e['capital_pct']:.2f}", f"{e['strategy_arm_pct']:.2f}",
          e["evaluations"], "yes" if e["compliant"] else "**no**") for e in finra.experiments])
        + f"\n\nEach experiment's evaluations, with their flow runs: `{detail_files['evaluations']}`."
        if finra.experiments else "No experiment was active in the period.")
    if finra.violations:
        sections.append("Violations\n\n" + markdown_table(
            ["experiment", "kind", "finding", "evidence (flow runs)"],
            [(v["experiment"], v["kind"], v["finding"],
              " ".join(f"[{e['flow_run_id'][:8]}]({e['flow_run_link']})" for e in v["evidence"] if e["flow_run_id"]))
             for v in finra.violations]))
    return "\n\n".join(sections)


def compliance_problems(sox, finra) -> str | None:  # noqa: ANN001
    """Why the run fails: a broken chain, and every FINRA violation; None when there is nothing."""
    problems = ([] if sox.chain["intact"] else ["audit chain broken"]) + [f"{v['experiment']}: {v['finding']}"
                                                                         for v in finra.violations]
    return "; ".join(problems) or None
