"""The platform API's routes against their stored performance baselines (runbook 001 "Performance
Baseline Management": alert on > 2 sigma deviation; issue 19): the `request:<METHOD> <route>`
rows the weekly performance-baselines flow stores, read with `latest_baselines`.

The window is the one `api_error_rate` and `api_p99_latency` read (the last 5 minutes of the same
request log: one deep-check interval, so each request is judged once). Its requests are taken as
the baseline flow takes them (status below 400, not /health, the path folded to its route), and a
route is judged by the flow's rule (`compare_window`): slow when the *median* of its requests is
above the baseline's mean + 2 sigma, with at least MIN_WINDOW_REQUESTS of them. The baseline's
mean and sigma describe single requests, so the window is summarised by a statistic of single
requests that does not live in the tail: a window's p99 is beyond mean + 2 sigma on an ordinary
day (a few percent of requests are), its median is not unless half of its requests are.

A route without a baseline (or with too few requests) is not judged and never fails: the check is
`skip` when no route could be judged, and says "no baseline" for each such route.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from blocks.processes import PlatformProcess
from tasks.health.platform import TRAFFIC_WINDOW, request_log_tail
from tasks.health.result import CheckResult, skipped
from tasks.performance.baselines import Baseline, WindowComparison, compare_window
from tasks.performance.samples import request_samples

CHECK = "api_route_latency"
MIN_WINDOW_REQUESTS = 10  # the fewest requests a route's window median is judged on (as a baseline's 10 samples)


def route_comparisons(request_log: Path, baselines: dict[str, Baseline], now: datetime,
                      window: timedelta = TRAFFIC_WINDOW) -> list[WindowComparison]:
    """Every route requested in the window before `now`, against its stored baseline (if any)."""
    since = now - window
    samples = list(request_samples(request_log_tail(request_log), since, now))
    return compare_window(samples, baselines, since, MIN_WINDOW_REQUESTS)


def describe(c: WindowComparison) -> str:
    """One route's verdict with the numbers it rests on, in milliseconds."""
    median = f"median {c.median * 1000:.1f} ms of {c.samples} request(s)"
    if c.baseline is None:
        return f"{c.operation}: no baseline ({median})"
    b = c.baseline
    rule = f"baseline mean {b.mean * 1000:.1f} + 2 x {b.stddev * 1000:.1f} = {b.limit * 1000:.1f} ms"
    if not c.judged:
        return f"{c.operation}: {median}, fewer than {c.min_samples}: not judged ({rule})"
    if c.anomalous:
        return (f"{c.operation}: {median} > {rule} (baseline p50 {b.p50 * 1000:.1f}, p95 {b.p95 * 1000:.1f}, "
                f"p99 {b.p99 * 1000:.1f} ms over {b.samples} samples; {c.beyond_limit} request(s) beyond)")
    return f"{c.operation}: {median} within {rule}"


def describe_all(comparisons: list[WindowComparison]) -> str:
    """Slow routes first, then those within their baseline, then those not judged."""
    order = sorted(comparisons, key=lambda c: (not c.anomalous, not c.judged, c.operation))
    return "; ".join(describe(c) for c in order)


def check_route_latency(process: PlatformProcess, baselines: dict[str, Baseline], now: datetime) -> CheckResult:
    target = f"api:{process.target}"
    if not process.request_log:
        return skipped(target, CHECK, "no request_log configured")
    try:
        comparisons = route_comparisons(Path(process.request_log), baselines, now)
    except FileNotFoundError:
        return skipped(target, CHECK, f"{process.request_log} does not exist yet")
    if not comparisons:
        return skipped(target, CHECK, "no successful API requests in the last 5 minutes")
    judged = [c for c in comparisons if c.judged]
    if not judged:
        return skipped(target, CHECK, "no route judged: " + describe_all(comparisons))
    slow = [c for c in judged if c.anomalous]
    summary = (f"{len(slow)} of {len(judged)} route(s) beyond 2 sigma of their baseline over the last 5 min: "
               if slow else f"{len(judged)} route(s) within 2 sigma of their baseline over the last 5 min: ")
    return CheckResult(target, CHECK, "fail" if slow else "pass", float(len(slow)), "routes",
                       summary + describe_all(comparisons))
