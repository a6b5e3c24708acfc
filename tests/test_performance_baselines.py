"""performance-baselines: percentiles equal numpy's on the same data; durations read from the
Prefect API and the sandbox's request log; a planted slow-down flagged beyond 2 sigma; baselines
stored and exported to Prometheus."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import apply_as_own_environment, run_flow
from flows.performance_baselines import performance_baselines
from blocks import TradeopsEnvironment
from blocks.logs import LogDirectory
from tasks.metrics import TradeopsCollector
from tasks.performance.baselines import Baseline, save_baselines
from tasks.performance.percentiles import grouped_percentiles
from tasks.performance.samples import request_samples, route_of

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


def test_grouped_percentiles_equal_numpy_on_the_same_data():
    rng = np.random.default_rng(19)
    groups = rng.choice(["a", "b", "c", "d"], size=20_000, p=[0.7, 0.2, 0.0999, 0.0001])
    values = np.round(rng.lognormal(0, 1, size=groups.size), 2)  # rounded: many ties
    groups[0], groups[1] = "single", "pair"
    groups[2] = "pair"
    stats = grouped_percentiles(groups, values)
    for i, name in enumerate(stats.names):
        mine = values[groups == name]
        assert stats.counts[i] == mine.size
        np.testing.assert_allclose(stats.percentiles[i], np.percentile(mine, [50, 95, 99]), rtol=1e-12, atol=0)
        assert stats.means[i] == pytest.approx(mine.mean()) and stats.stddevs[i] == pytest.approx(mine.std())


def test_request_lines_become_routes():
    since = datetime(2026, 12, 1, tzinfo=timezone.utc)
    lines = ["2026-12-05T10:00:00.123Z INFO api GET /api/v1/experiments/exp_7/results status=200 duration_ms=12 user=a",
             "2026-12-05T10:00:01.000Z WARN api GET /api/v1/positions status=403 duration_ms=2 user=b reason=x",
             "2026-12-05T10:00:02.000Z INFO api PUT /api/v1/strategies/momentum_alpha/params status=200 duration_ms=40",
             "2026-12-05T10:00:03.000Z INFO trading order filled latency_ms=3",
             "2026-12-05T10:00:04.000000+00:00 GET /api/v1/regime 200 3.25",  # the platform process's request log
             "2026-12-05T10:00:05.000000+00:00 GET /health 200 0.50",
             "2026-12-05T10:00:06.000000+00:00 GET /api/v1/fail 500 1.00"]
    found = list(request_samples(lines, since, since + timedelta(days=10)))
    assert [(s.operation, s.seconds) for s in found] == [("GET /api/v1/experiments/{id}/results", 0.012),
                                                       ("PUT /api/v1/strategies/{id}/params", 0.040),
                                                       ("GET /api/v1/regime", 0.00325)]
    assert route_of("/api/v1/health") == "/api/v1/health"


@task
def probe_step(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@flow(name="baseline-probe")
def baseline_probe(environment: str, seconds: float = 0.01) -> float:
    return probe_step(seconds)


@pytest.fixture
def sandbox_env(pg_sandbox, tmp_path):
    platform, config = pg_sandbox
    return apply_as_own_environment(config, tmp_path, "perf")


def api_durations(env_name: str, route: str) -> list[float]:
    """The request log read independently: successful `route` requests, in seconds."""
    block = TradeopsEnvironment.load(env_name)
    found = []
    for logs in block.log_blocks:
        for path in Path(LogDirectory.load(logs).path).glob("api*.log"):
            for line in path.read_text().splitlines():
                m = re.search(r" api GET (\S+) status=(\d+) duration_ms=(\d+)", line)
                if m and m.group(1) == route and int(m.group(2)) < 400:
                    found.append(int(m.group(3)) / 1000)
    return found


def test_baselines_from_runs_and_requests_stored_exported_and_anomalies_flagged(sandbox_env):
    name, store = sandbox_env
    states = [baseline_probe(environment=name, return_state=True) for _ in range(12)]
    run_ids = [s.state_details.flow_run_id for s in states]
    with get_client(sync_client=True) as client:
        durations = [client.read_flow_run(i).total_run_time.total_seconds() for i in run_ids]
    # a previous baseline the probe's runs are far above: a slow-down beyond 2 sigma
    now = datetime.now(timezone.utc)
    save_baselines(store, name, [Baseline("flow", "baseline-probe", 50, 1e-4, 1e-4, 1e-4, 1e-4, 0.0)],
                   now - timedelta(days=37), now - timedelta(days=7))

    state, result = run_flow(performance_baselines, environment=name)
    assert state.is_failed() and "flow baseline-probe median" in state.message
    [anomaly] = result["anomalies"]
    assert anomaly["operation"] == "baseline-probe" and anomaly["recent_samples"] == 12
    by_operation = {(b["source"], b["operation"]): b for b in result["baselines"]}
    probe = by_operation[("flow", "baseline-probe")]
    assert probe["samples"] == 12
    np.testing.assert_allclose([probe["p50"], probe["p95"], probe["p99"]], np.percentile(durations, [50, 95, 99]))
    assert by_operation[("task", "baseline-probe/probe_step")]["samples"] == 12
    positions = api_durations(name, "/api/v1/positions")
    request = by_operation[("request", "GET /api/v1/positions")]
    assert request["samples"] == len(positions) >= 10
    np.testing.assert_allclose([request["p50"], request["p95"], request["p99"]],
                               np.percentile(positions, [50, 95, 99]))

    registry = CollectorRegistry()
    registry.register(TradeopsCollector(name, store))
    scraped = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for m in text_string_to_metric_families(generate_latest(registry).decode()) for s in m.samples}
    labels = (("environment", name), ("operation", "baseline-probe"), ("quantile", "0.95"), ("source", "flow"))
    assert scraped[("tradeops_performance_baseline_seconds", labels)] == pytest.approx(probe["p95"])

    state, again = run_flow(performance_baselines, environment=name)  # against the new baseline: no anomaly
    assert state.is_completed(), state.message
    assert again["anomalies"] == []
