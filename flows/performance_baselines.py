"""performance-baselines: p50/p95/p99 per operation over a rolling 30-day window (runbook 001
"Performance Baseline Management"; 004 monthly "Performance Baseline"). Weekly, Monday 00:00 UTC;
monthly, the first Tuesday at 04:30 (004's maintenance window).

1. Durations of the window: every completed flow run of the environment and its completed task
   runs, from the Prefect API; every successful request (not /health) in the platform process's
   request log and the log directories' `api` lines, routes with their ids folded into `{id}`.
2. Per operation (flow, flow/task, request route) with at least 10 samples: p50, p95, p99, mean
   and sigma, in one vectorised pass (tasks/performance/percentiles.py).
3. Anomalies: an operation whose durations of the last 7 days have a median above the previous
   baseline's mean + 2 sigma (runbook 001 "Alert Triggered (>2σ deviation)"); the run fails so its
   alert goes out, naming them.
4. The new baselines stored (`performance_baseline`: health checks and the next run read the
   newest), exported to Prometheus with the other metrics (`tradeops_performance_baseline_seconds`),
   audited (`performance_baseline_update`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.environment import LoadedEnvironment, load_environment
from tasks.performance.baselines import (
    RECENT_DAYS, anomalies, compute_baselines, key, latest_baselines, save_baselines,
)
from tasks.performance.report import baselines_markdown
from tasks.performance.samples import prefect_samples, request_log_samples
from tasks.reporting import final_state, publish_summary, report_denial
from tradeops import clock
from tradeops.store.records import append_audit

REQUEST_LOG_GLOB = "api*.log"  # the application's API log in each log directory


@flow(name="performance-baselines", **FAILURE_HOOKS)
def performance_baselines(environment: str = "default", window_days: int = 30) -> State:
    """Recompute every operation's baseline of `environment` over the last `window_days`."""
    env = load_environment(environment)
    try:
        actor = require_permission(env, permission_for("performance-baselines"), "performance_baseline_update")
    except AccessDenied as exc:
        return report_denial("performance-baselines", env.name, env.store_url, f"Performance baselines {env.name}",
                             str(exc))
    end = clock.utcnow()
    start = end - timedelta(days=window_days)
    samples = prefect_samples(env.name, start, end) + request_log_samples(request_logs(env), start, end)
    previous = latest_baselines(env.store_url, env.name)
    baselines = compute_baselines(samples)
    found = anomalies(samples, previous, end - timedelta(days=RECENT_DAYS))
    save_baselines(env.store_url, env.name, baselines, start, end)
    failure = ("performance degraded beyond 2 sigma: " + "; ".join(
        f"{a.source} {a.operation} median {a.recent_median:.3f} s > {a.baseline_limit:.3f} s" for a in found)
               if found else None)
    append_audit(env.store_url, "performance_baseline_update", actor.user, success=True,
                 details={"window_start": start.isoformat(), "window_end": end.isoformat(),
                          "operations": len(baselines), "samples": len(samples),
                          "anomalies": [f"{a.source}:{a.operation}" for a in found]})
    counts = Counter(s.source for s in samples)
    operations = {key(s) for s in samples}
    markdown = baselines_markdown(env.name, f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC", baselines,
                                  previous, found, counts, len(operations) - len(baselines))
    get_run_logger().info("%d baselines from %d samples, %d anomalies", len(baselines), len(samples), len(found))
    result = {"window_start": start.isoformat(), "window_end": end.isoformat(), "samples": dict(counts),
              "baselines": [asdict(b) for b in baselines], "anomalies": [asdict(a) for a in found]}
    result = publish_summary("performance-baselines", env.name, env.store_url, markdown, result, failure,
                             table=[{"source": b.source, "operation": b.operation, "samples": b.samples,
                                     "p50": b.p50, "p95": b.p95, "p99": b.p99} for b in baselines],
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)


def request_logs(env: LoadedEnvironment) -> list[Path]:
    """The platform processes' request logs, and the application API logs of every log directory
    (live files only: rotated ones are archived and compressed)."""
    found = [Path(p.request_log) for p in env.block.processes() if p.request_log]
    found += sorted(path for logs in env.block.log_directories() for path in Path(logs.path).glob(REQUEST_LOG_GLOB))
    return [path for path in found if path.is_file()]

