"""health-check: the checklist at three levels (runbook 001 "Check Levels"; 002 "Morning Health
Checks", 003, 004), then self-healing (001 "Remediation Matrix", "Escalation Procedures").

Levels:
- shallow (every 30 s): every database answers its probe; every platform process is alive and
  answers /health.
- deep (every 5 min, the default): shallow, plus connections in use, sessions idle in a transaction
  or blocking others, data freshness, queue depth and its oldest item, disk free, memory, certificates,
  newest log, backup age, the platform API's error rate and p99 latency, each API route against its
  stored performance baseline (median of the last 5 min beyond mean + 2 sigma), its process's CPU
  (thresholds: runbook 004's table).
- diagnostic (on demand, and on escalation): deep, plus slow queries with their plans, the lock graph, top tables and
  the newest error lines of the logs, in the report.
Then:
1. Remediation: each failing condition the matrix covers is acted on (or, dry run, described),
   within its guard, attempts and cool-down; audited with this run (`remediations` in the result).
2. Escalation: 3 failed remediations, or a critical condition past 15 minutes, opens an incident.
3. Alerts, per condition and at its severity: one notice when it starts failing, a reminder every
   repeat interval (4 h), a resolved notice when it clears (its incident resolves with it).
Report: a markdown table artifact and an incidents artifact; every result in the ops store;
Failed when a check fails that remediation did not fix.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.log_archival import log_archival
from tasks.access import current_actor
from tasks.alert_groups import Finding, deliver_notices, plan_notices
from tasks.capacity.sizes import record_sizes_task
from tasks.environment import load_environment
from tasks.health import (
    CheckResult, check_backup_age_task, check_certificates_task, check_database_task,
    check_disk_free_task, check_memory_task, check_newest_log_task, thresholds_with,
)
from tasks.health.conditions import condition_for, condition_key
from tasks.health.diagnostics import diagnose_database, diagnostics_markdown, recent_error_lines
from tasks.health.platform import check_api_traffic, check_cpu, check_process_alive
from tasks.health.route_latency import check_route_latency
from tasks.incidents import add_event, list_incidents, record_on_open_incident, resolve_condition
from tasks.incidents.report import incidents_markdown
from tasks.performance.baselines import latest_baselines
from tasks.remediation import RemediationContext, escalate, remediate
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary
from tradeops.clock import utcnow
from tradeops.store.records import current_flow_run_id, save_health_results

Level = Literal["shallow", "deep", "diagnostic"]


@flow(name="health-check", log_prints=False, **FAILURE_HOOKS)
def health_check(environment: str = "default", level: Level = "deep") -> State:
    """Check `environment` (a TradeopsEnvironment block) at `level`, remediate, escalate, alert."""
    logger = get_run_logger()
    env = load_environment(environment)
    limits = thresholds_with(env.block.health_thresholds)
    shallow = level == "shallow"
    processes = env.block.processes()

    futures = [
        check_database_task.submit(
            db.target, db.url.get_secret_value(), db.display_url(), limits, db.probe_query,
            db.freshness_table, db.freshness_column, shallow=shallow, queue_table=db.queue_table,
        )
        for db in env.block.databases()
    ]
    results: list[CheckResult] = [check_process_alive(p) for p in processes]
    if not shallow:
        futures += [check_disk_free_task.submit(path, limits["disk_free_pct"])
                    for path in env.block.health_disk_paths or [env.block.data_dir]]
        futures.append(check_memory_task.submit(limits["memory_used_pct"]))
        futures += [
            check_certificates_task.submit([str(p) for p in certs.certificate_files()], certs.endpoints,
                                           limits["certificate_days_left"])
            for certs in env.block.certificate_sets()
        ]
        futures += [check_newest_log_task.submit(logs.target, logs.path, logs.pattern,
                                                 limits["newest_log_age_minutes"])
                    for logs in env.block.log_directories()]
        futures.append(check_backup_age_task.submit(env.store_url, environment, limits["backup_age_hours"]))
        baselines = latest_baselines(env.store_url, environment)  # performance-baselines' stored rows
        for process in processes:
            results += check_api_traffic(process, limits["api_error_rate_pct"], limits["api_p99_latency_ms"])
            results.append(check_route_latency(process, baselines, utcnow()))
            results.append(check_cpu(process, limits["cpu_used_pct"]))

    for future in futures:
        outcome = future.result()
        results.extend(outcome if isinstance(outcome, list) else [outcome])

    save_health_results(env.store_url, environment, results)
    if not shallow:
        record_sizes_task(env, "health-check")  # the capacity report's history (issue 19)
    for r in results:
        log = logger.error if r.status == "fail" else logger.warning if r.status == "warn" else logger.info
        log("%s %s %s: %s", r.status.upper(), r.target, r.check, r.detail)

    # self-healing: remediate, escalate, then alert on what is still failing
    run_id = current_flow_run_id()
    actor = current_actor(env)
    failing = [r for r in results if r.status == "fail"]
    findings = [_finding(r) for r in failing]
    remediations, escalations = [], []
    if env.block.remediation_enabled:
        context = RemediationContext(
            environment=environment, store_url=env.store_url, block=env.block, actor=actor, flow_run_id=run_id,
            dry_run=env.block.remediation_dry_run, thresholds=limits,
            values={condition_key(r): r.value for r in failing if r.value is not None},
            run_archival=lambda: _archive_logs_now(environment))
        remediations = remediate(context, findings)
        fixed = {r.condition_key for r in remediations if r.outcome == "fixed"}
        findings = [f for f in findings if f.key not in fixed]
        escalations = escalate(context, findings, remediations)
    else:
        fixed = set()
    for record in remediations:
        log = logger.warning if record.outcome in ("failed", "denied", "exhausted") else logger.info
        log("remediation %s %s: %s (%s)", record.action, record.condition_key, record.outcome, record.detail)

    evaluated = {condition_key(r) for r in results if r.status != "skip"}
    notices = plan_notices(env.store_url, environment, findings, evaluated,
                           timedelta(minutes=env.block.alert_repeat_minutes))
    notices = deliver_notices(env.store_url, environment, notices, env.block.alert_channels())
    resolved_incidents = []
    for notice in notices:
        if notice.kind == "resolved":
            incident = resolve_condition(env.store_url, environment, notice.key, actor.user, "condition cleared",
                                         run_id)
            resolved_incidents += [incident] if incident else []
        elif notice.sends:
            record_on_open_incident(env.store_url, environment, notice.key, "alert", actor.user,
                                    f"{notice.kind} notice ({notice.severity}): {notice.summary}", run_id)

    counts = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "fail", "skip")}
    failures = [r for r in failing if condition_key(r) not in fixed]
    open_incidents = list_incidents(env.store_url, environment, ("open", "acknowledged"))
    sections = [
        f"# Health check: {environment}",
        f"level {level} · " + " · ".join(f"{STATUS_ICON[s]}: {n}" for s, n in counts.items()),
        markdown_table(["status", "target", "check", "value", "detail"],
                       [(STATUS_ICON[r.status], r.target, r.check,
                         "" if r.value is None else f"{r.value:g} {r.unit}", r.detail)
                        for r in sorted(results, key=_severity_order)]),
    ]
    if env.block.remediation_enabled:
        mode = "dry run: nothing was changed" if env.block.remediation_dry_run else "on"
        sections.append(f"## Remediation ({mode})\n\n" + (markdown_table(
            ["condition", "action", "outcome", "detail"],
            [(r.condition_key, r.action, r.outcome, r.detail) for r in remediations])
            if remediations else "nothing to do"))
    else:
        sections.append("## Remediation\n\nswitched off for this environment ([remediation] enabled = false)")
    sent = [n for n in notices if n.sends]
    if sent:
        sections.append("## Notifications\n\n" + markdown_table(
            ["condition", "notice", "severity", "delivery"], [(n.key, n.kind, n.severity, n.status) for n in sent]))
    if escalations or open_incidents:
        sections.append(incidents_markdown(environment, open_incidents,
                                           [i for i in open_incidents if i.id in {e.incident_id for e in escalations}],
                                           resolved_incidents).replace("# Incidents", "## Incidents", 1))
    if level == "diagnostic" or escalations:  # runbook 001: diagnostic on demand, and on escalation
        for escalation in escalations:
            add_event(env.store_url, escalation.incident_id, "note", actor.user,
                      "diagnostics (slow queries, lock graph, top tables, error lines) in this run's report", run_id)
        sections.append(diagnostics_markdown(
            [diagnose_database(db.target, db.url.get_secret_value()) for db in env.block.databases()],
            {logs.target: recent_error_lines(logs.path, logs.pattern) for logs in env.block.log_directories()}))
    markdown = "\n\n".join(sections)
    if escalations or resolved_incidents:
        create_markdown_artifact(key="health-check-incidents", markdown=incidents_markdown(
            environment, open_incidents, [i for i in open_incidents if i.id in {e.incident_id for e in escalations}],
            resolved_incidents), description=f"Incidents of {environment}")

    failure = None
    if failures:
        failure = f"{len(failures)} check(s) failed: " + "; ".join(f"{r.target} {r.check}: {r.detail}"
                                                                 for r in failures)
    result = {"environment": environment, "level": level, "counts": counts,
              "checks": [r.as_dict() for r in results],
              "remediations": [r.as_dict() for r in remediations],
              "escalations": [e.as_dict() for e in escalations],
              "notifications": [n.as_dict() for n in sent],
              "open_incidents": [{"id": i.id, "severity": i.severity, "condition": i.condition_key,
                                  "status": i.status} for i in open_incidents]}
    result = publish_summary("health-check", environment, env.store_url, markdown, result, failure,
                             table=[r.as_dict() for r in results],
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)


def _finding(result: CheckResult) -> Finding:
    condition = condition_for(result)
    return Finding(condition_key(result), condition.name, result.target, condition.severity,
                   f"{condition.title}: {result.target}", result.detail)


def _archive_logs_now(environment: str) -> tuple[bool, str]:
    """Run log archival now, as a subflow of this run (runbook 001: Disk Space Low -> Log cleanup)."""
    state = log_archival(environment=environment, return_state=True)
    return state.is_completed(), f"log-archival run {state.state_details.flow_run_id}: {state.name}"


def _severity_order(result: CheckResult) -> tuple[int, str, str]:
    return ({"fail": 0, "warn": 1, "pass": 2, "skip": 3}[result.status], result.target, result.check)
