"""health-check: the morning checklist (runbooks 002 "Morning Health Checks", 003, 004).

Checklist, for every configured target:
1. PostgreSQL reachable, answering its probe; connections in use vs max_connections.
2. Data freshness: the newest row of the configured table.
3. Disk free on the configured paths; memory in use on this host.
4. Certificates: days left for every file and endpoint.
5. Logs: age of the newest log file.
6. Backups: age of the newest complete backup per target, when the catalog has one.
Report: a markdown table artifact, every result in the ops store; Failed when any check fails.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from tasks.capacity.sizes import record_sizes_task
from tasks.environment import load_environment
from tasks.health import (
    CheckResult, check_backup_age_task, check_certificates_task, check_database_task,
    check_disk_free_task, check_memory_task, check_newest_log_task, thresholds_with,
)
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary
from tradeops.store.records import save_health_results


@flow(name="health-check", log_prints=False, **FAILURE_HOOKS)
def health_check(environment: str = "default") -> State:
    """Run the morning checklist against every target of `environment` (a TradeopsEnvironment block)."""
    logger = get_run_logger()
    env = load_environment(environment)
    limits = thresholds_with(env.block.health_thresholds)

    futures = [
        check_database_task.submit(
            db.target, db.url.get_secret_value(), db.display_url(), limits, db.probe_query,
            db.freshness_table, db.freshness_column,
        )
        for db in env.block.databases()
    ]
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

    results: list[CheckResult] = []
    for future in futures:
        outcome = future.result()
        results.extend(outcome if isinstance(outcome, list) else [outcome])

    save_health_results(env.store_url, environment, results)
    record_sizes_task(env, "health-check")  # the capacity report's history (issue 19)
    for r in results:
        log = logger.error if r.status == "fail" else logger.warning if r.status == "warn" else logger.info
        log("%s %s %s: %s", r.status.upper(), r.target, r.check, r.detail)

    counts = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "fail", "skip")}
    failures = [r for r in results if r.status == "fail"]
    markdown = "\n\n".join([
        f"# Health check: {environment}",
        " · ".join(f"{STATUS_ICON[s]}: {n}" for s, n in counts.items()),
        markdown_table(["status", "target", "check", "value", "detail"],
                       [(STATUS_ICON[r.status], r.target, r.check,
                         "" if r.value is None else f"{r.value:g} {r.unit}", r.detail)
                        for r in sorted(results, key=_severity_order)]),
    ])
    failure = None
    if failures:
        failure = f"{len(failures)} check(s) failed: " + "; ".join(f"{r.target} {r.check}: {r.detail}"
                                                                 for r in failures)
    result = {"environment": environment, "counts": counts, "checks": [r.as_dict() for r in results]}
    result = publish_summary("health-check", environment, env.store_url, markdown, result, failure,
                             table=[r.as_dict() for r in results],
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)


def _severity_order(result: CheckResult) -> tuple[int, str, str]:
    return ({"fail": 0, "warn": 1, "pass": 2, "skip": 3}[result.status], result.target, result.check)
