"""Conditions: what a failed health check means, and how serious it is, per condition rather than
per flow (runbook 004 "Incident Classification": a database that does not answer is P1; runbook
001 "Alert Channels": critical pages, high and medium go to chat, low to the digest).

A condition is keyed `<condition>:<target>` (e.g. `database_unreachable:platform`): alerts are
grouped on it, remediation counts its attempts on it, an incident dedups on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.health.result import CheckResult


@dataclass(frozen=True)
class Condition:
    name: str
    check: str  # the health check whose failure it is
    severity: str  # critical, high, medium, low (P1..P4)
    title: str
    source: str


CONDITIONS: dict[str, Condition] = {
    c.check: c for c in (
        Condition("database_unreachable", "reachable", "critical", "database does not answer",
                  "runbook 004 DatabaseConnectionLost (critical alert); P1 'System down'"),
        Condition("platform_process_down", "process_alive", "critical", "platform process down",
                  "runbook 004 RegimeSystemDown (critical alert); P1 'Complete service outage'"),
        Condition("connection_pool_exhausted", "connections", "high", "connection pool nearly exhausted",
                  "runbook 001 Remediation Matrix: Connection Pool Exhaustion"),
        Condition("sessions_holding_locks", "idle_in_transaction", "high",
                  "sessions idle in a transaction or blocking others",
                  "runbook 001 Remediation Matrix: Database Lock"),
        Condition("disk_space_low", "disk_free", "high", "disk space low",
                  "runbook 001 Remediation Matrix: Disk Space Low; 004 Disk Space <10% critical"),
        Condition("certificate_due", "certificate_expiry", "high", "certificate expires soon",
                  "runbook 001 Certificate Management (7 days: high)"),
        Condition("api_error_rate_high", "api_error_rate", "high", "platform API error rate high",
                  "runbook 004 P2 example 'High error rate'"),
        Condition("api_latency_high", "api_p99_latency", "medium", "platform API p99 latency high",
                  "runbook 004 P3 'Degraded performance'; 001 API Degradation"),
        Condition("api_route_slow", "api_route_latency", "medium", "platform API route slower than its baseline",
                  "runbook 001 Performance Baselines (> 2 sigma deviation), API Degradation; 004 P3 'Degraded "
                  "performance'"),
        Condition("data_stale", "data_freshness", "high", "platform data is stale",
                  "runbook 004 Data Freshness Checks (major functionality impaired)"),
        Condition("queue_backlog", "queue_depth", "high", "platform queue backlog",
                  "runbook 004 Key Metrics: Queue Depth >1000 critical; P2 'major functionality impaired' "
                  "(orders wait)"),
        Condition("queue_stalled", "queue_oldest_age", "high", "platform queue not draining",
                  "runbook 004 Key Metrics: Queue Depth (an item that never leaves the queue); P2"),
        Condition("memory_high", "memory_used", "medium", "memory use high", "runbook 004 HighMemoryUsage (warning)"),
        Condition("cpu_high", "cpu_used", "medium", "CPU use high", "runbook 004 Key Metrics: CPU Usage"),
        Condition("logs_stale", "newest_log_age", "medium", "platform stopped writing logs",
                  "runbook 004 Hourly Checks"),
        Condition("backup_stale", "backup_age", "high", "no recent backup",
                  "runbooks 000/003: daily backups; a missed backup puts data at risk"),
    )
}
DEFAULT_SEVERITY = "medium"


def condition_for(result: CheckResult) -> Condition:
    """The condition a check result speaks to (a check without an entry: medium)."""
    return CONDITIONS.get(result.check) or Condition(result.check, result.check, DEFAULT_SEVERITY,
                                                     f"{result.check} failing", "no runbook entry: medium")


def condition_key(result: CheckResult) -> str:
    return f"{condition_for(result).name}:{result.target}"
