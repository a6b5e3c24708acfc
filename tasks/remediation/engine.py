"""The remediation engine: for each failing condition the matrix covers, check the acting user's
role, count the condition's attempts in its current episode (since its alert group started
firing), respect the cool-down and the maximum, act (or, in a dry run, say what it would do),
record the attempt in the ops store and the audit trail with the flow run; then escalate what it
could not fix: 3 failed attempts, or a critical condition persisting past 15 minutes, opens an
incident (one per condition) with the condition's severity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlmodel import select

from blocks.environment import TradeopsEnvironment
from tasks.access import AccessDenied, Actor
from tasks.alert_groups import Finding
from tasks.health.conditions import CONDITIONS
from tasks.health.platform import TRAFFIC_WINDOW, read_traffic
from tasks.health.route_latency import describe_all, route_comparisons
from tasks.health.thresholds import Threshold
from tasks.incidents import open_incident, record_on_open_incident
from tasks.performance.baselines import latest_baselines
from tasks.remediation.actions import (
    ActionResult, archive_logs_now, open_circuit_breaker, open_circuit_breaker_for_routes, renew_certificate_file,
    restart_process, terminate_sessions,
)
from tasks.remediation.matrix import (
    ESCALATE_AFTER_FAILED_ATTEMPTS, ESCALATE_CRITICAL_AFTER, REMEDIATION_MATRIX, RemediationRule,
)
from tradeops.clock import utcnow
from tradeops.store.engine import session_for
from tradeops.store.models import AlertGroup, HealthResult, RemediationAttempt
from tradeops.store.records import append_audit

PERMISSION = "health.remediate"  # runbook 000 has no such line: administrators ("*") and the service user
ATTEMPT_OUTCOMES = ("fixed", "failed")  # what counts as an attempt (a dry run or a refusal does not)
BASELINE_RUNS = 20  # the p99 baseline: this many earlier runs


@dataclass(frozen=True)
class RemediationContext:
    environment: str
    store_url: str
    block: TradeopsEnvironment
    actor: Actor
    flow_run_id: str | None
    dry_run: bool
    thresholds: dict[str, Threshold]
    values: dict[str, float]  # condition key -> the measured value of its failing check
    run_archival: Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class RemediationRecord:
    condition_key: str
    action: str
    outcome: str  # fixed, failed, dry-run, refused, cooling-down, exhausted, denied
    detail: str
    dry_run: bool
    failed_attempts: int  # in this episode, this one included
    baseline: str = ""  # the circuit breaker: which baseline it judged by

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Escalation:
    condition_key: str
    incident_id: int
    opened: bool  # False: added to the incident already open for it
    severity: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def episode_start(store_url: str, environment: str, key: str) -> datetime:
    """When the condition's current failing episode began: its firing alert group's first sighting."""
    with session_for(store_url) as session:
        group = session.exec(select(AlertGroup).where(AlertGroup.environment == environment,
                                                      AlertGroup.group_key == key)).first()
    if group is None or group.status != "firing":
        return utcnow()
    return _aware(group.first_seen_at)


def attempts_since(store_url: str, environment: str, key: str, since: datetime) -> list[RemediationAttempt]:
    with session_for(store_url) as session:
        return list(session.exec(select(RemediationAttempt).where(
            RemediationAttempt.environment == environment, RemediationAttempt.condition_key == key,
            RemediationAttempt.started_at >= since, RemediationAttempt.outcome.in_(ATTEMPT_OUTCOMES))
            .order_by(RemediationAttempt.started_at)).all())


# -- the actions, bound to what a finding names ---------------------------------------------------

def _database_url(ctx: RemediationContext, target: str) -> str | None:
    for db in ctx.block.databases():
        if db.target == target:
            return db.url.get_secret_value()
    return None


def _process(ctx: RemediationContext, target: str):  # noqa: ANN202
    name = target.split(":", 1)[1]
    return next((p for p in ctx.block.processes() if p.target == name), None)


def _terminate(ctx: RemediationContext, finding: Finding) -> ActionResult:
    url = _database_url(ctx, finding.target)
    if url is None:
        return ActionResult("refused", f"no database target {finding.target}")
    return terminate_sessions(url, ctx.thresholds["idle_in_transaction_seconds"].fail, ctx.dry_run)


def _restart(ctx: RemediationContext, finding: Finding) -> ActionResult:
    process = _process(ctx, finding.target)
    if process is None:
        return ActionResult("refused", f"no platform process {finding.target}")
    return restart_process(process, ctx.dry_run)


def _renew(ctx: RemediationContext, finding: Finding) -> ActionResult:
    name = finding.target.split(":", 1)[1]
    for certs in ctx.block.certificate_sets():
        if any(path.name == name for path in certs.certificate_files()):
            return renew_certificate_file(certs, name, Path(ctx.block.data_dir), utcnow(), ctx.dry_run)
    return ActionResult("refused", f"{name} is an endpoint or not a configured certificate file")


def _archive(ctx: RemediationContext, finding: Finding) -> ActionResult:
    return archive_logs_now(ctx.run_archival, ctx.dry_run)


def _breaker(ctx: RemediationContext, finding: Finding) -> ActionResult:
    """The stored route baselines (performance-baselines) judge first; when none judges the window
    (no baseline for its routes, or too few requests), the p99 of the earlier health checks."""
    process = _process(ctx, finding.target)
    if process is None:
        return ActionResult("refused", f"no platform process {finding.target}")
    now = utcnow()
    comparisons = []
    if process.request_log and Path(process.request_log).is_file():
        comparisons = route_comparisons(Path(process.request_log), latest_baselines(ctx.store_url, ctx.environment),
                                        now)
    judged = [c for c in comparisons if c.judged]
    if judged:
        return open_circuit_breaker_for_routes(process, judged, now, ctx.dry_run)
    with session_for(ctx.store_url) as session:
        history = session.exec(select(HealthResult.value).where(
            HealthResult.environment == ctx.environment, HealthResult.target == finding.target,
            HealthResult.check == "api_p99_latency", HealthResult.value.is_not(None),
            HealthResult.flow_run_id != ctx.flow_run_id)
            .order_by(HealthResult.checked_at.desc()).limit(BASELINE_RUNS)).all()
    p99 = ctx.values.get(f"{CONDITIONS['api_p99_latency'].name}:{finding.target}")
    if p99 is None and process.request_log:  # raised by another condition: the window's p99, as the check reads it
        p99 = read_traffic(Path(process.request_log), now - TRAFFIC_WINDOW).p99_ms
    why = "no stored route baseline judges the window" + (f": {describe_all(comparisons)}" if comparisons else "")
    return open_circuit_breaker(process, p99 or 0.0, [float(v) for v in history], now, ctx.dry_run, why)


ACTIONS: dict[str, Callable[[RemediationContext, Finding], ActionResult]] = {
    "terminate_sessions": _terminate,
    "restart_process": _restart,
    "renew_certificate": _renew,
    "archive_logs": _archive,
    "open_circuit_breaker": _breaker,
}


# -- the engine -----------------------------------------------------------------------------------

def _record(ctx: RemediationContext, finding: Finding, rule: RemediationRule, result: ActionResult,
            failed: int) -> RemediationRecord:
    with session_for(ctx.store_url) as session:
        session.add(RemediationAttempt(flow_run_id=ctx.flow_run_id, environment=ctx.environment,
                                       condition_key=finding.key, action=rule.action, actor=ctx.actor.user,
                                       outcome=result.outcome, detail=result.detail, started_at=utcnow()))
        session.commit()
    append_audit(ctx.store_url, "remediation", ctx.actor.user, success=result.outcome in ("fixed", "dry-run"),
                 details={"environment": ctx.environment, "condition": finding.key, "action": rule.action,
                          "outcome": result.outcome, "dry_run": ctx.dry_run, "detail": result.detail,
                          "source": rule.source, **({"baseline": result.baseline} if result.baseline else {})})
    record_on_open_incident(ctx.store_url, ctx.environment, finding.key, "remediation", ctx.actor.user,
                            f"{rule.action}: {result.outcome}: {result.detail}", ctx.flow_run_id)
    return RemediationRecord(finding.key, rule.action, result.outcome, result.detail, ctx.dry_run, failed,
                             result.baseline)


def remediate(ctx: RemediationContext, findings: list[Finding]) -> list[RemediationRecord]:
    records = []
    now = utcnow()
    for finding in findings:
        rule = REMEDIATION_MATRIX.get(finding.condition)
        if rule is None:
            continue
        tries = attempts_since(ctx.store_url, ctx.environment, finding.key,
                               episode_start(ctx.store_url, ctx.environment, finding.key))
        failed = sum(t.outcome == "failed" for t in tries)
        if failed >= rule.max_attempts:
            records.append(RemediationRecord(finding.key, rule.action, "exhausted",
                                             f"{failed} failed attempt(s), the most the matrix allows; manual "
                                             f"fallback: {rule.manual_fallback}", ctx.dry_run, failed))
            continue
        if tries and now - _aware(tries[-1].started_at) < rule.cooldown:
            records.append(RemediationRecord(finding.key, rule.action, "cooling-down",
                                             f"last attempt at {_aware(tries[-1].started_at).isoformat()}, cool-down "
                                             f"{rule.cooldown}", ctx.dry_run, failed))
            continue
        try:
            ctx.actor.require(PERMISSION)
        except AccessDenied as exc:
            append_audit(ctx.store_url, "remediation", ctx.actor.user, success=False,
                         details={"denied": str(exc), "role": ctx.actor.role, "permission": PERMISSION,
                                  "condition": finding.key, "action": rule.action})
            records.append(RemediationRecord(finding.key, rule.action, "denied", str(exc), ctx.dry_run, failed))
            continue
        try:
            result = ACTIONS[rule.action](ctx, finding)
        except Exception as exc:  # noqa: BLE001 - an action that broke is a failed attempt, said plainly
            result = ActionResult("failed", f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        failed += result.outcome == "failed"
        records.append(_record(ctx, finding, rule, result, failed))
    return records


def escalate(ctx: RemediationContext, findings: list[Finding], records: list[RemediationRecord]
             ) -> list[Escalation]:
    """Open (or add to) an incident for each condition remediation could not fix in time."""
    by_key = {r.condition_key: r for r in records}
    now = utcnow()
    escalations = []
    for finding in findings:
        record = by_key.get(finding.key)
        rule = REMEDIATION_MATRIX.get(finding.condition)
        limit = min(ESCALATE_AFTER_FAILED_ATTEMPTS, rule.max_attempts) if rule else ESCALATE_AFTER_FAILED_ATTEMPTS
        reason = None
        if record is not None and record.failed_attempts >= limit:
            reason = f"{record.failed_attempts} failed remediation attempt(s) ({record.action})"
        elif finding.severity == "critical":
            since = episode_start(ctx.store_url, ctx.environment, finding.key)
            if now - since >= ESCALATE_CRITICAL_AFTER:
                reason = f"critical since {since.isoformat()}, over {ESCALATE_CRITICAL_AFTER}"
        if reason is None:
            continue
        opened = open_incident(ctx.store_url, ctx.environment, finding.key, finding.summary, finding.severity,
                               ctx.actor.user, ctx.flow_run_id, reason, note_if_open=False)
        if opened.created:
            escalations.append(Escalation(finding.key, opened.incident.id, True, opened.incident.severity, reason))
    return escalations
