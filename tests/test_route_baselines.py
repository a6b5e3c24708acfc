"""The health check's route check against stored performance baselines (issue 19): the weekly
flow's 2-sigma rule (window median above mean + 2 sigma) on the last 5 minutes of the request log,
checked against numpy on the same planted requests; no baseline or too few requests never fail.
(On the sandbox, with the circuit breaker: tests/test_remediation.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from blocks import PlatformProcess
from tasks.health.conditions import condition_for, condition_key
from tasks.health.route_latency import MIN_WINDOW_REQUESTS, check_route_latency, route_comparisons
from tasks.performance.baselines import Baseline

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
SLOW = Baseline("request", "GET /api/v1/slow", 400, 0.019, 0.027, 0.034, 0.020, 0.005)  # limit 30 ms
REGIME = Baseline("request", "GET /api/v1/regime", 400, 0.003, 0.004, 0.005, 0.003, 0.001)  # limit 5 ms
BASELINES = {"request:GET /api/v1/slow": SLOW, "request:GET /api/v1/regime": REGIME}


def request_lines(path: str, durations_ms: list[float], end: datetime, status: int = 200) -> list[str]:
    """One line per request, the platform process's format, spread over the 4 minutes before `end`."""
    step = timedelta(minutes=4) / len(durations_ms)
    return [f"{(end - timedelta(minutes=4) + i * step).isoformat()} GET {path} {status} {ms:.2f}"
            for i, ms in enumerate(durations_ms)]


def plant(tmp_path, lines: list[str]) -> PlatformProcess:
    log = tmp_path / "api-requests.log"
    log.write_text("\n".join(lines) + "\n")
    return PlatformProcess(target="api", pid_file=str(tmp_path / "api.pid"), request_log=str(log))


def test_a_slow_route_is_flagged_with_its_baseline_a_route_within_it_is_not(tmp_path):
    slow = [70.0, 75, 80, 85, 90, 78, 82, 88, 72, 76, 84, 79]
    regime = [2.5, 3.0, 3.2, 2.8, 3.1, 2.9, 3.4, 2.7, 3.0, 3.3, 2.6, 3.0]
    process = plant(tmp_path, [
        *request_lines("/api/v1/slow", slow, NOW),
        *request_lines("/api/v1/slow", [9.0] * 5, NOW - timedelta(minutes=6)),  # before the window
        *request_lines("/api/v1/slow", [5.0] * 3, NOW, status=500),  # errors are not latency
        *request_lines("/api/v1/regime", regime, NOW),
        *request_lines("/health", [0.5] * 20, NOW),
        *request_lines("/api/v1/positions", [40.0] * 12, NOW),  # no baseline
        *request_lines("/api/v1/orders", [400.0] * (MIN_WINDOW_REQUESTS - 1), NOW),  # too few to judge
    ])
    baselines = {**BASELINES, "request:GET /api/v1/orders": SLOW}
    by_route = {c.operation: c for c in route_comparisons(tmp_path / "api-requests.log", baselines, NOW)}
    assert set(by_route) == {"GET /api/v1/slow", "GET /api/v1/regime", "GET /api/v1/positions", "GET /api/v1/orders"}
    assert by_route["GET /api/v1/slow"].samples == 12
    assert by_route["GET /api/v1/slow"].median == np.median(slow) / 1000
    assert by_route["GET /api/v1/slow"].beyond_limit == sum(ms > 30 for ms in slow)
    assert [c.operation for c in by_route.values() if c.anomalous] == ["GET /api/v1/slow"]
    assert not by_route["GET /api/v1/orders"].judged and by_route["GET /api/v1/positions"].baseline is None

    result = check_route_latency(process, baselines, NOW)
    assert (result.status, result.value, result.unit) == ("fail", 1.0, "routes")
    assert result.detail.startswith("1 of 2 route(s) beyond 2 sigma")
    assert (f"GET /api/v1/slow: median {np.median(slow):.1f} ms of 12 request(s) > baseline mean 20.0 + 2 x 5.0 = "
            "30.0 ms (baseline p50 19.0, p95 27.0, p99 34.0 ms over 400 samples; 12 request(s) beyond)") in result.detail
    assert f"GET /api/v1/regime: median {np.median(regime):.1f} ms of 12 request(s) within baseline mean 3.0" \
        in result.detail
    assert "GET /api/v1/positions: no baseline" in result.detail
    assert f"fewer than {MIN_WINDOW_REQUESTS}: not judged" in result.detail
    condition = condition_for(result)
    assert (condition.name, condition.severity, condition_key(result)) == ("api_route_slow", "medium",
                                                                           "api_route_slow:api:api")


def test_routes_within_their_baseline_pass_and_no_baseline_never_fails(tmp_path):
    process = plant(tmp_path, [*request_lines("/api/v1/slow", [31.0] * 5 + [25.0] * 7, NOW),  # 5 beyond: median in
                               *request_lines("/api/v1/regime", [3.0] * 12, NOW)])
    within = check_route_latency(process, BASELINES, NOW)
    assert (within.status, within.value) == ("pass", 0.0) and "2 route(s) within 2 sigma" in within.detail

    nothing_stored = check_route_latency(process, {}, NOW)
    assert nothing_stored.status == "skip"
    assert "GET /api/v1/slow: no baseline" in nothing_stored.detail and "GET /api/v1/regime: no baseline" \
        in nothing_stored.detail
    assert check_route_latency(process, BASELINES, NOW + timedelta(minutes=10)).status == "skip"  # window empty
    missing = PlatformProcess(target="api", pid_file=str(tmp_path / "api.pid"), request_log=str(tmp_path / "none"))
    assert check_route_latency(missing, BASELINES, NOW).status == "skip"
