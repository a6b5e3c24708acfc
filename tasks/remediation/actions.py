"""The remediation actions, real ones: each takes what it acts on and whether to only say what it
would do, and returns an `ActionResult`. Guards first: an action that may not touch something says
so (`refused`) and touches nothing.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from blocks.certificates import CertificateSet
from blocks.processes import PlatformProcess
from tasks.certificates import inspect_certificate_set, renew_certificate
from tasks.databases import connect
from tasks.health.platform import health_answers
from tasks.health.route_latency import describe_all
from tasks.health.sessions import Session, sessions_holding_up, terminable
from tasks.performance.baselines import WindowComparison
from tradeops.files import atomic_write_text

BASELINE_MIN_SAMPLES = 5
SIGMAS = 2.0  # runbook 001 Performance Baselines / API Degradation: 2 sigma
STORED_BASELINE = "stored performance baseline"  # the performance-baselines flow's route baselines
HISTORY_BASELINE = "health-check p99 history"  # the fallback: p99 of the earlier health checks


@dataclass(frozen=True)
class ActionResult:
    outcome: str  # fixed, failed, dry-run, refused
    detail: str
    touched: list[str] = field(default_factory=list)  # what it acted (or would act) on
    baseline: str = ""  # the circuit breaker: which baseline it judged by


def terminate_sessions(url: str, threshold_seconds: float, dry_run: bool) -> ActionResult:
    """pg_terminate_backend every session holding others up past the threshold that the guard allows."""
    with connect(url) as conn:
        holding = sessions_holding_up(conn, threshold_seconds)
        allowed: list[Session] = [s for s in holding if terminable(s) is None]
        spared = [f"{s.describe()}: spared, {terminable(s)}" for s in holding if terminable(s) is not None]
        if not allowed:
            return ActionResult("refused", "; ".join(spared) or "no session past the threshold any more")
        touched = [s.describe() for s in allowed]
        if dry_run:
            return ActionResult("dry-run", "would terminate " + "; ".join(touched), touched)
        cursor = conn.cursor()
        ended = []
        for session in allowed:
            cursor.execute("SELECT pg_terminate_backend(%s)", (session.pid,))
            ended.append(bool(cursor.fetchone()[0]))
        cursor.close()
    outcome = "fixed" if all(ended) else "failed"
    return ActionResult(outcome, "terminated " + "; ".join(touched) + (f" (spared: {'; '.join(spared)})" if spared
                                                                       else ""), touched)


def restart_process(process: PlatformProcess, dry_run: bool) -> ActionResult:
    """Run the supervisor command of a process that is not running; then it must answer."""
    pid = process.pid()
    if pid is not None and (not process.health_url or health_answers(process.health_url) is None):
        return ActionResult("refused", f"pid {pid} is running and answers: not restarted")
    if pid is not None:
        return ActionResult("refused", f"pid {pid} is running but not answering: a live process is never "
                                       "restarted automatically (manual fallback: controlled restart)")
    if not process.start_command:
        return ActionResult("failed", f"{process.target}: no start_command (supervisor command) configured")
    command = " ".join(process.start_command[:3]) + (" ..." if len(process.start_command) > 3 else "")
    if dry_run:
        return ActionResult("dry-run", f"would run the supervisor command of {process.target}: {command}",
                            [process.target])
    try:
        completed = subprocess.run(process.start_command, capture_output=True, timeout=process.start_timeout_seconds,
                                   stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ActionResult("failed", f"supervisor command of {process.target} did not finish: {type(exc).__name__}",
                            [process.target])
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return ActionResult("failed", f"supervisor command of {process.target} exited {completed.returncode}: "
                                      f"{tail[0][:200]}", [process.target])
    deadline = time.monotonic() + process.start_timeout_seconds
    while time.monotonic() < deadline:
        new_pid = process.pid()
        if new_pid is not None and (not process.health_url or health_answers(process.health_url) is None):
            return ActionResult("fixed", f"restarted {process.target}: pid {new_pid} answers", [process.target])
        time.sleep(0.1)
    return ActionResult("failed", f"{process.target} restarted but did not come up within "
                                  f"{process.start_timeout_seconds:g} s", [process.target])


def renew_certificate_file(certs: CertificateSet, file_name: str, backups_root: Path, now: datetime,
                           dry_run: bool) -> ActionResult:
    """Renew one certificate file with its set's renew command (rolled back when not good)."""
    check = next((c for c in inspect_certificate_set(certs, now) if c.kind == "file" and c.name == file_name), None)
    if check is None:
        return ActionResult("refused", f"{file_name} is not a certificate file of {certs.target} (endpoints are "
                                       "renewed where they are served)")
    if not certs.renew_command:
        return ActionResult("failed", f"{file_name}: certificate set {certs.target} has no renew_command")
    if dry_run:
        return ActionResult("dry-run", f"would renew {file_name} with {certs.renew_command[0]}", [file_name])
    outcome = renew_certificate(certs, check, backups_root, now)
    return ActionResult("fixed" if outcome.renewed else "failed", f"{file_name}: {outcome.action}", [file_name])


def archive_logs_now(run_archival: Callable[[], tuple[bool, str]], dry_run: bool) -> ActionResult:
    """Free disk by running log archival now (rotate, compress, verify, retention)."""
    if dry_run:
        return ActionResult("dry-run", "would run log archival now", ["logs"])
    ok, detail = run_archival()
    return ActionResult("fixed" if ok else "failed", detail, ["logs"])


def latency_baseline(history_ms: list[float]) -> tuple[float, float] | None:
    """(mean, standard deviation) of the earlier p99 values, or None with too few of them."""
    if len(history_ms) < BASELINE_MIN_SAMPLES:
        return None
    return statistics.fmean(history_ms), statistics.stdev(history_ms)


def _trip(process: PlatformProcess, what: str, baseline: str, now: datetime, dry_run: bool) -> ActionResult:
    """Open the flag (`what`: why, `baseline`: which baseline said so), unless it is open already."""
    flag = Path(process.circuit_breaker_file)
    if flag.exists():
        return ActionResult("refused", f"the circuit breaker {flag} is already open ({baseline}: {what})",
                            baseline=baseline)
    if dry_run:
        return ActionResult("dry-run", f"would open the circuit breaker {flag} ({baseline}): {what}", [str(flag)],
                            baseline)
    atomic_write_text(flag, f"opened_at={now.isoformat()}\nbaseline={baseline}\nreason={what}\n")
    return ActionResult("fixed", f"opened the circuit breaker {flag} ({baseline}): {what}", [str(flag)], baseline)


def open_circuit_breaker(process: PlatformProcess, p99_ms: float, history_ms: list[float], now: datetime,
                         dry_run: bool, why_history: str = "") -> ActionResult:
    """Open the platform's circuit-breaker flag when the window's p99 runs away from the p99 of the
    earlier health checks by 2 sigma (the fallback when no stored route baseline judges the window:
    `why_history` says why). Like with like: a 5-minute p99 against earlier 5-minute p99s."""
    if not process.circuit_breaker_file:
        return ActionResult("failed", f"{process.target}: no circuit_breaker_file configured")
    label = f"{HISTORY_BASELINE} ({len(history_ms)} earlier run(s)" + (f"; {why_history})" if why_history else ")")
    baseline = latency_baseline(history_ms)
    if baseline is None:
        return ActionResult("refused", f"{label}: only {len(history_ms)} earlier p99 values: a baseline needs "
                                       f"{BASELINE_MIN_SAMPLES}", baseline=label)
    mean, sigma = baseline
    limit = mean + SIGMAS * sigma
    if p99_ms <= limit:
        return ActionResult("refused", f"{label}: p99 {p99_ms:.1f} ms is within 2 sigma of the baseline "
                                       f"({mean:.1f} + 2 x {sigma:.1f} = {limit:.1f} ms)", baseline=label)
    return _trip(process, f"p99 {p99_ms:.1f} ms > baseline {mean:.1f} + 2 x {sigma:.1f} = {limit:.1f} ms", label,
                 now, dry_run)


def open_circuit_breaker_for_routes(process: PlatformProcess, comparisons: list[WindowComparison], now: datetime,
                                    dry_run: bool) -> ActionResult:
    """Open the flag when a route's window median is beyond its stored baseline's mean + 2 sigma
    (`comparisons`: the routes a stored baseline judges, tasks/health/route_latency.py)."""
    if not process.circuit_breaker_file:
        return ActionResult("failed", f"{process.target}: no circuit_breaker_file configured")
    slow = [c for c in comparisons if c.anomalous]
    if not slow:
        return ActionResult("refused", f"{STORED_BASELINE}: every route within 2 sigma of its baseline: "
                                       + describe_all(comparisons), baseline=STORED_BASELINE)
    return _trip(process, describe_all(slow), STORED_BASELINE, now, dry_run)
