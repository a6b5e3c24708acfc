"""FINRA 15c3-5 for a period (runbook 000 FINRAComplianceMonitor): every experiment's capital
against the 10% / 5% limits, and experiments promoted without adequate statistical validation or
despite non-significant results. Each finding carries its evidence: the experiment, the
evaluation and the flow runs that produced them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import select

from tasks.compliance.period import Period
from tasks.experiments.decision import capital_findings
from tasks.experiments.lifecycle import arm_capital_pct, evaluations_of
from tradeops.store import Experiment, session_for


@dataclass
class FinraReport:
    period: str
    experiments: list[dict] = field(default_factory=list)
    violations: list[dict] = field(default_factory=list)
    evaluations: list[dict] = field(default_factory=list)  # every evaluation an experiment's count counts


def _active_in(row: Experiment, period: Period) -> bool:
    if row.started_at is None or row.started_at >= period.end:
        return False
    return row.concluded_at is None or row.concluded_at >= period.start


def finra_report(store_url: str, environment: str, period: Period) -> FinraReport:
    with session_for(store_url) as session:
        rows = list(session.exec(select(Experiment).where(Experiment.environment == environment)
                                 .order_by(Experiment.id)).all())
    active = [r for r in rows if _active_in(r, period)]
    report = FinraReport(period.label)
    for row in active:
        arm = arm_capital_pct(row.strategy, active)
        findings = capital_findings(row.capital_pct, arm)
        evaluations = evaluations_of(store_url, row.id)
        report.evaluations += [{"experiment_id": row.id, "experiment": row.name, "evaluation_id": e.id,
                                "evaluated_at": e.evaluated_at.isoformat(), "decision": e.decision,
                                "p_value": e.p_value, "n_control": e.n_control, "n_variant": e.n_variant,
                                "flow_run_id": e.flow_run_id} for e in evaluations]
        report.experiments.append({
            "id": row.id, "experiment": row.name, "strategy": row.strategy, "status": row.status,
            "capital_pct": row.capital_pct, "strategy_arm_pct": round(arm, 6), "split": row.split,
            "conclusion": row.conclusion, "evaluations": len(evaluations), "compliant": not findings})
        for finding in findings:
            report.violations.append(_violation(row, "capital limit", finding, evaluations[-1:] if evaluations else []))
        if row.conclusion == "promote" and row.concluded_at and period.start <= row.concluded_at < period.end:
            before = [e for e in evaluations if e.evaluated_at <= row.concluded_at]
            if not before:
                report.violations.append(_violation(
                    row, "no statistical validation", "promoted with no evaluation on record", []))
            elif before[-1].decision != "promote":
                last = before[-1]
                report.violations.append(_violation(
                    row, "promoted despite the evaluation",
                    f"promoted by {row.concluded_by} while the latest evaluation said {last.decision} "
                    f"(p={last.p_value}, {last.n_control}/{last.n_variant} trades): {last.rule}", [last]))
    return report


def _violation(row: Experiment, kind: str, finding: str, evaluations: list) -> dict:
    return {"experiment_id": row.id, "experiment": row.name, "strategy": row.strategy, "kind": kind,
            "finding": finding,
            "evidence": [{"evaluation_id": e.id, "evaluated_at": e.evaluated_at.isoformat(),
                          "flow_run_id": e.flow_run_id, "decision": e.decision,
                          "findings": json.loads(e.findings_json)} for e in evaluations]}
