"""Runbook 001 "Remediation Matrix", as data: each condition the health check detects, the action
that fixes it, the guard that action keeps, how often it may try and how long it waits between
tries. Escalation (001 "Escalation Triggers"; 004 "Escalate if service won't start within 15
minutes"): 3 failed remediations, or a critical condition persisting past 15 minutes, opens an
incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

ESCALATE_AFTER_FAILED_ATTEMPTS = 3  # runbook 001: "3+ failed remediation attempts"
ESCALATE_CRITICAL_AFTER = timedelta(minutes=15)  # 001: "Critical issues persisting > 15 minutes"; 004: 15 min


@dataclass(frozen=True)
class RemediationRule:
    condition: str  # tasks/health/conditions.py
    action: str  # tasks/remediation/actions.py ACTIONS
    guard: str  # what the action refuses to touch
    max_attempts: int
    cooldown: timedelta
    manual_fallback: str
    source: str


REMEDIATION_MATRIX: dict[str, RemediationRule] = {
    r.condition: r for r in (
        RemediationRule("sessions_holding_locks", "terminate_sessions",
                        "only sessions idle in a transaction or blocking others past the threshold; never our "
                        "own, a tradeops or a replication session", 3, timedelta(minutes=1),
                        "Manual investigation", "runbook 001: Database Lock -> Kill query"),
        RemediationRule("connection_pool_exhausted", "terminate_sessions",
                        "as for locks: only sessions holding others up past the threshold", 3,
                        timedelta(minutes=1), "Restart service", "runbook 001: Connection Pool Exhaustion -> "
                                                                 "Reset connections"),
        RemediationRule("disk_space_low", "archive_logs",
                        "only what log archival would do anyway: rotate, compress, verify, then remove originals",
                        3, timedelta(minutes=5), "Add storage", "runbook 001: Disk Space Low -> Log cleanup"),
        RemediationRule("certificate_due", "renew_certificate",
                        "only certificate files with a renew command; the old files come back when the new ones "
                        "do not validate", 3, timedelta(minutes=5), "Renew by hand (001 Renewal Failure)",
                        "runbook 001 Certificate Management: renew 30 days before expiry"),
        RemediationRule("platform_process_down", "restart_process",
                        "only when no live process holds its pid file, through its supervisor command", 3,
                        timedelta(minutes=1), "Controlled restart, investigate",
                        "runbook 004 RegimeSystemDown: restart the service; escalate after 15 minutes"),
        RemediationRule("api_latency_high", "open_circuit_breaker",
                        "only when a route's median over the last 5 min exceeds its stored performance baseline "
                        "by more than 2 sigma; with no stored baseline that judges the window, when p99 exceeds "
                        "the mean of the last 20 runs' p99 by more than 2 sigma (at least 5 of them)", 1,
                        timedelta(minutes=15), "Switch to backup",
                        "runbook 001: API Degradation, Latency > 2 sigma -> Circuit breaker"),
        RemediationRule("api_route_slow", "open_circuit_breaker",
                        "as for api_latency_high: the stored route baseline first, the health-check p99 history "
                        "when none judges the window", 1, timedelta(minutes=15), "Switch to backup",
                        "runbook 001: Performance Baselines (> 2 sigma), API Degradation -> Circuit breaker"),
    )
}
