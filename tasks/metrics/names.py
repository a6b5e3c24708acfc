"""Every metric tradeops exports, in one table: name, type, labels, buckets and where it comes from.

Runbook 000 ("Custom Metrics Collection", "Alerting Rules") names the strategy-lifecycle metrics and
their labels; those keep its names exactly, so its alert rules work unchanged. The others are ours
and start with `tradeops_`. Every metric also carries `environment` (one ops store can hold several).

Timestamps are exported as such (`..._timestamp_seconds`) so alert rules compute ages with `time()`:
a value pushed to a Pushgateway is frozen at push time, a timestamp stays right. The ages exported
beside them (`tradeops_backup_age_seconds`, `tradeops_certificate_days_left`) are for people and
dashboards, correct at collection time.

Histogram buckets (seconds) include runbook 000's alert thresholds ("Performance Benchmarks":
Git operations alert if > 3 s, A/B test creation > 12 s (its alert rule: > 10 s), statistical
analysis > 6 s, capital allocation > 7 s) so `histogram_quantile` is exact at the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]
    source: str  # the ops store rows it is read from
    buckets: tuple[float, ...] = ()


GIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
EXPERIMENT_CREATION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 8.0, 10.0, 12.0, 20.0, 30.0, 60.0)
STATISTICAL_ANALYSIS_BUCKETS = (0.1, 0.5, 1.0, 2.0, 4.0, 5.0, 6.0, 10.0, 30.0, 60.0, 120.0)
CAPITAL_ALLOCATION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 30.0, 60.0)
# runbooks 003/004 response (15 min, 1 h, 4 h, 24 h) and 003 resolution (4 h, 8 h, 24 h, 72 h) targets
INCIDENT_BUCKETS = (300.0, 900.0, 1800.0, 3600.0, 14400.0, 28800.0, 86400.0, 259200.0)

ENV = ("environment",)

METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    # -- runbook 000 "Custom Metrics Collection" (names and labels as written there) --
    MetricSpec("git_operations_total", "counter", "Total number of Git operations",
               ENV + ("operation_type", "status"), "audit_entry: strategy_* operations"),
    MetricSpec("git_operation_duration_seconds", "histogram", "Git operation execution time",
               ENV + ("operation_type",), "audit_entry: strategy_* execution_time_ms", GIT_BUCKETS),
    MetricSpec("experiments_active_total", "gauge", "Number of active A/B experiments",
               ENV, "experiment: status running"),
    MetricSpec("experiment_creation_duration_seconds", "histogram", "Time to create new experiment",
               ENV, "audit_entry: experiment_create execution_time_ms", EXPERIMENT_CREATION_BUCKETS),
    MetricSpec("statistical_analysis_duration_seconds", "histogram", "Time for statistical analysis completion",
               ENV, "flow_run_summary: experiment-evaluation experiments[].analysis_seconds",
               STATISTICAL_ANALYSIS_BUCKETS),
    MetricSpec("capital_allocation_duration_seconds", "histogram", "Time for capital allocation operations",
               ENV, "audit_entry: experiment_start execution_time_ms (starting commits its capital)",
               CAPITAL_ALLOCATION_BUCKETS),
    # runbook 000 "Alerting Rules": ExperimentStatisticalFailure
    MetricSpec("experiment_statistical_errors_total", "counter", "Statistical analyses that could not complete",
               ENV, "flow_run_summary: experiment-evaluation experiments[] not evaluated"),
    # -- backups --
    MetricSpec("tradeops_backup_last_success_timestamp_seconds", "gauge",
               "When the newest artifact of the target in a complete backup set was made",
               ENV + ("target",), "backup_artifact + backup_set (complete)"),
    MetricSpec("tradeops_backup_age_seconds", "gauge", "Age of the newest complete backup of the target",
               ENV + ("target",), "backup_artifact + backup_set (complete), at collection time"),
    MetricSpec("tradeops_backup_last_verified_timestamp_seconds", "gauge",
               "When a backup artifact of the target was last verified", ENV + ("target",),
               "backup_artifact.verified_at"),
    MetricSpec("tradeops_backup_size_bytes", "gauge", "Size of the target's artifacts in its newest complete set",
               ENV + ("target",), "backup_artifact.size"),
    MetricSpec("tradeops_backup_sets", "gauge", "Backup sets in the catalog, by kind and status",
               ENV + ("kind", "status"), "backup_set"),
    # -- performance baselines (runbook 001: p50/p95/p99 per operation, 30 days) --
    MetricSpec("tradeops_performance_baseline_seconds", "gauge",
               "The newest performance baseline of an operation: its p50, p95 or p99 duration over 30 days",
               ENV + ("source", "operation", "quantile"), "performance_baseline.p50/p95/p99_seconds"),
    MetricSpec("tradeops_performance_baseline_limit_seconds", "gauge",
               "Mean + 2 sigma of an operation's newest baseline: above it a duration is anomalous (runbook 001)",
               ENV + ("source", "operation"), "performance_baseline.mean_seconds, stddev_seconds"),
    # -- DR drills --
    MetricSpec("tradeops_dr_drill_rto_seconds", "gauge", "Recovery time of the last DR drill",
               ENV, "dr_drill.rto_seconds"),
    MetricSpec("tradeops_dr_drill_rpo_seconds", "gauge", "Recovery point (age of the restored set) of the last DR drill",
               ENV, "dr_drill.rpo_seconds"),
    MetricSpec("tradeops_dr_drill_success", "gauge", "1 when the last DR drill passed, 0 when it failed",
               ENV, "dr_drill.passed"),
    MetricSpec("tradeops_dr_drill_last_timestamp_seconds", "gauge", "When the last DR drill started",
               ENV, "dr_drill.started_at"),
    # -- certificates --
    MetricSpec("tradeops_certificate_expiry_timestamp_seconds", "gauge", "When the certificate expires (notAfter)",
               ENV + ("certificate",), "flow_run_summary: cert-check / health_result: certificate_expiry"),
    MetricSpec("tradeops_certificate_days_left", "gauge", "Days until the certificate expires (negative: expired)",
               ENV + ("certificate",), "as above, at collection time"),
    # -- database maintenance --
    MetricSpec("tradeops_maintenance_duration_seconds", "gauge", "Time the last db-maintenance spent on the database",
               ENV + ("target",), "flow_run_summary: db-maintenance databases[].steps[].seconds"),
    MetricSpec("tradeops_maintenance_step_duration_seconds", "gauge",
               "Time the last db-maintenance spent on one kind of statement (VACUUM, REINDEX...)",
               ENV + ("target", "operation"), "flow_run_summary: db-maintenance databases[].steps[]"),
    MetricSpec("tradeops_maintenance_last_timestamp_seconds", "gauge", "When the last db-maintenance run ended",
               ENV, "flow_run_summary: db-maintenance recorded_at"),
    # -- flow runs --
    MetricSpec("tradeops_flow_run_last_state", "gauge", "1 for the state the flow's last run ended in, 0 for the other",
               ENV + ("flow", "state"), "flow_run_summary"),
    MetricSpec("tradeops_flow_run_last_timestamp_seconds", "gauge", "When the flow's last run ended",
               ENV + ("flow",), "flow_run_summary.recorded_at"),
    MetricSpec("tradeops_flow_run_last_failure_timestamp_seconds", "gauge", "When a run of the flow last failed",
               ENV + ("flow",), "flow_run_summary.recorded_at (state Failed or Crashed)"),
    MetricSpec("tradeops_flow_runs_total", "counter", "Flow runs recorded, by final state",
               ENV + ("flow", "state"), "flow_run_summary"),
    # -- health check, alerts, the collection itself --
    MetricSpec("tradeops_health_check_value", "gauge", "The value the last health check measured (its unit in `check`)",
               ENV + ("target", "check"), "health_result (the newest health-check run)"),
    MetricSpec("tradeops_health_check_status", "gauge", "The last health check's grade: 0 pass, 1 warn, 2 fail",
               ENV + ("target", "check"), "health_result (the newest health-check run)"),
    MetricSpec("tradeops_alerts_sent_total", "counter", "Alerts delivered to the alert channels, by severity",
               ENV + ("severity",), "alert_sent"),
    # -- incidents and self-healing (runbooks 001, 003, 004) --
    MetricSpec("tradeops_incidents_open", "gauge", "Incidents open or acknowledged, by severity (P1-P4)",
               ENV + ("severity",), "incident: status open or acknowledged"),
    MetricSpec("tradeops_incident_acknowledge_seconds", "histogram", "Time from an incident's opening to its "
               "acknowledgement", ENV + ("severity",), "incident.acknowledged_at - opened_at", INCIDENT_BUCKETS),
    MetricSpec("tradeops_incident_resolve_seconds", "histogram", "Time from an incident's opening to its resolution",
               ENV + ("severity",), "incident.resolved_at - opened_at", INCIDENT_BUCKETS),
    MetricSpec("tradeops_remediations_total", "counter", "Remediations the health check made, would make (dry "
               "run) or refused, by action and outcome", ENV + ("action", "outcome"), "remediation_attempt"),
    MetricSpec("tradeops_metrics_collect_success", "gauge", "1 when this part of the metrics could be read from the ops store",
               ENV + ("part",), "the collector"),
)}

FLOW_STATES = ("Completed", "Failed")  # what publish_summary records (each flow's last state shows both, 0 or 1)
FAILED_STATES = ("Failed", "Crashed")  # a run recorded as Crashed counts as a failure too
HEALTH_GRADES = {"pass": 0, "warn": 1, "fail": 2}  # "skip" is not exported


def exposed_names() -> set[str]:
    """The sample names a scrape shows: histograms as _bucket/_count/_sum (and counters' _created is off)."""
    names = set()
    for spec in METRICS.values():
        if spec.kind == "histogram":
            names |= {f"{spec.name}_bucket", f"{spec.name}_count", f"{spec.name}_sum"}
        else:
            names.add(spec.name)
    return names
