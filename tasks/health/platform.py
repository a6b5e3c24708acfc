"""Platform process checks (runbook 004 "Key Metrics to Monitor"): alive and answering /health
(shallow), error rate and p99 latency of its API from its request log, host CPU (deep).

The request log has one line per request: `<ISO time> <method> <path> <status> <duration ms>`;
/health requests (ours) are left out of the API's numbers.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from blocks.processes import PlatformProcess
from tasks.health.result import CheckResult, failed, graded, skipped
from tasks.health.thresholds import Threshold
from tradeops.clock import utcnow

HEALTH_TIMEOUT_SECONDS = 2.0
TRAFFIC_WINDOW = timedelta(minutes=5)  # runbook 004: error rate every 5 minutes
TAIL_BYTES = 4 * 1024 * 1024  # the newest part of the request log is enough for a 5-minute window
CPU_SAMPLE_SECONDS = 0.25


def health_answers(url: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> str | None:
    """None when GET `url` answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        return str(getattr(reason, "strerror", None) or reason)


def check_process_alive(process: PlatformProcess) -> CheckResult:
    target = f"process:{process.target}"
    pid = process.pid()
    if pid is None:
        return failed(target, "process_alive", f"no live process in {process.pid_file}")
    if process.health_url:
        problem = health_answers(process.health_url)
        if problem:
            return failed(target, "process_alive", f"pid {pid} is running but {process.health_url} fails: {problem}")
    return CheckResult(target, "process_alive", "pass", None, None,
                       f"pid {pid} running" + (f", {process.health_url} answers" if process.health_url else ""))


@dataclass(frozen=True)
class Traffic:
    requests: int
    errors: int  # status >= 500
    durations_ms: tuple[float, ...]

    @property
    def error_rate_pct(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.durations_ms, 99)) if self.durations_ms else 0.0


def request_log_tail(request_log: Path) -> list[str]:
    """The newest lines of the request log (its last TAIL_BYTES, without a cut first line)."""
    with open(request_log, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - TAIL_BYTES))
        return handle.read().decode(errors="replace").splitlines()[1 if size > TAIL_BYTES else 0:]


def read_traffic(request_log: Path, since: datetime) -> Traffic:
    """The API requests (not /health) logged since `since`."""
    requests = errors = 0
    durations = []
    for line in request_log_tail(request_log):
        parts = line.split()
        if len(parts) != 5 or parts[2] == "/health":
            continue
        try:
            at, status, ms = datetime.fromisoformat(parts[0]), int(parts[3]), float(parts[4])
        except ValueError:
            continue
        if at < since:
            continue
        requests += 1
        errors += status >= 500
        durations.append(ms)
    return Traffic(requests, errors, tuple(durations))


def check_api_traffic(process: PlatformProcess, error_rate: Threshold, p99: Threshold,
                      now: datetime | None = None) -> list[CheckResult]:
    target = f"api:{process.target}"
    if not process.request_log:
        return [skipped(target, "api_error_rate", "no request_log configured")]
    now = now or utcnow()
    try:
        traffic = read_traffic(Path(process.request_log), now - TRAFFIC_WINDOW)
    except FileNotFoundError:
        return [skipped(target, "api_error_rate", f"{process.request_log} does not exist yet")]
    if not traffic.requests:
        return [skipped(target, "api_error_rate", "no API requests in the last 5 minutes")]
    window = f"{traffic.requests} requests in the last 5 min"
    return [graded(target, "api_error_rate", error_rate, traffic.error_rate_pct,
                   f"{traffic.errors} of {window} failed"),
            graded(target, "api_p99_latency", p99, traffic.p99_ms, f"p99 {traffic.p99_ms:.1f} ms over {window}")]


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_cpu(process: PlatformProcess, threshold: Threshold,
              sample_seconds: float = CPU_SAMPLE_SECONDS) -> CheckResult:
    """CPU the platform process uses, in % of one core, over a short sample (runbook 004 "CPU
    Usage"); the host's CPU would also count tradeops' own work and everything else on it."""
    target = f"process:{process.target}"
    pid = process.pid()
    if pid is None:
        return skipped(target, "cpu_used", "the process is not running")
    try:
        before, started = _process_cpu_seconds(pid), time.perf_counter()
        time.sleep(sample_seconds)
        after, elapsed = _process_cpu_seconds(pid), time.perf_counter() - started
    except (OSError, IndexError, ValueError):
        return skipped(target, "cpu_used", f"pid {pid} ended while it was measured")
    used_pct = 100.0 * (after - before) / elapsed
    return graded(target, "cpu_used", threshold, used_pct, f"pid {pid} used {used_pct:.1f}% of a core over "
                                                             f"{elapsed:.2f} s")
