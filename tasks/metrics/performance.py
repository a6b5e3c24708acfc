"""The newest performance baseline of each operation (runbook 001 "Export to Monitoring"): its
p50/p95/p99 and its 2-sigma limit, so alert rules and dashboards compare live latency with it."""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import Metric

from tasks.metrics.families import family
from tasks.performance.baselines import latest_baselines


def performance_families(store_url: str, environment: str) -> Iterator[Metric]:
    seconds = family("tradeops_performance_baseline_seconds")
    limit = family("tradeops_performance_baseline_limit_seconds")
    for baseline in latest_baselines(store_url, environment).values():
        for quantile, value in (("0.5", baseline.p50), ("0.95", baseline.p95), ("0.99", baseline.p99)):
            seconds.add_metric([environment, baseline.source, baseline.operation, quantile], value)
        limit.add_metric([environment, baseline.source, baseline.operation], baseline.limit)
    yield from (seconds, limit)
