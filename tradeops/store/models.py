"""tradeops' own records, as SQLModel tables. Every record a flow writes carries its flow run id.

Change a table here only together with a new Alembic revision in `tradeops/migrations/versions/`
(`tests/test_store.py` fails when the two disagree), so an upgrade never loses records.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from tradeops import clock


def utcnow() -> datetime:
    return clock.utcnow()


class HealthResult(SQLModel, table=True):
    """One graded health check of one target in one health-check run."""

    __tablename__ = "health_result"
    __table_args__ = (Index("ix_health_result_target_checked", "target", "checked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64)
    target: str = Field(max_length=200)
    check: str = Field(max_length=64)
    status: str = Field(max_length=8)
    value: float | None = None
    unit: str | None = Field(default=None, max_length=16)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    checked_at: datetime = Field(default_factory=utcnow)


class BackupSet(SQLModel, table=True):
    """A backup set: complete only once every artifact and the manifest are in place."""

    __tablename__ = "backup_set"

    id: int | None = Field(default=None, primary_key=True)
    set_id: str = Field(max_length=64, unique=True)
    environment: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # daily | weekly | emergency
    status: str = Field(default="pending", max_length=16)  # pending | complete | failed
    manifest_path: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    verified_at: datetime | None = None
    offsite_url: str | None = Field(default=None, max_length=500)  # the store that holds all of it offsite
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)


class BackupArtifact(SQLModel, table=True):
    """One artifact of a backup set, as the catalog knows it (runbook fields plus checksum)."""

    __tablename__ = "backup_artifact"
    __table_args__ = (Index("ix_backup_artifact_target_created", "target", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    set_id: str = Field(max_length=64, foreign_key="backup_set.set_id", index=True)
    target: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    path: str
    offsite_key: str | None = None
    sha256: str = Field(max_length=64)
    size: int
    created_at: datetime = Field(default_factory=utcnow)
    verified_at: datetime | None = None
    expires_at: datetime | None = None
    removed_at: datetime | None = None  # retention removed it (local file and offsite copy); the set may remain
    reused_from: str | None = Field(default=None, max_length=64)  # set id whose artifact this reuses
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    flow_run_id: str | None = Field(default=None, max_length=36)


class AuditEntry(SQLModel, table=True):
    """An append-only, hash-chained audit record with runbook 000's SOX fields."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    timestamp: datetime = Field(default_factory=utcnow, index=True)
    operation: str = Field(max_length=64)
    user: str = Field(max_length=64)
    strategy_name: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=64)
    repository_hash: str | None = Field(default=None, max_length=64)
    execution_time_ms: int | None = None
    success: bool = True
    changed_files: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    compliance_flags: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)  # not unique: see migration 0006


class FlowRunSummary(SQLModel, table=True):
    """Each flow run's outcome and summary, so evidence outlives a Prefect server rebuild."""

    __tablename__ = "flow_run_summary"

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    flow_name: str = Field(max_length=64, index=True)
    environment: str = Field(max_length=64)
    state: str = Field(max_length=16)
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    summary_markdown: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    result_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    recorded_at: datetime = Field(default_factory=utcnow)


class DrDrill(SQLModel, table=True):
    """One disaster-recovery drill: which set, how long the restore took (RTO), how old the set
    was (RPO), and each target's outcome; trended in the drill report."""

    __tablename__ = "dr_drill"

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64, index=True)
    set_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    passed: bool = False
    targets_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))


class LogArchive(SQLModel, table=True):
    """One compressed log archive and the time range it covers: the index `tradeops logs retrieve`
    reads so it opens only the archives (and, inside them, the gzip members) of the asked range."""

    __tablename__ = "log_archive"
    __table_args__ = (Index("ix_log_archive_range", "environment", "log_type", "first_at", "last_at"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64)
    target: str = Field(max_length=200)
    log_type: str = Field(max_length=200)
    source_name: str = Field(max_length=500)
    archive_name: str = Field(max_length=500, unique=True)  # <environment>/<target>/<type>/<file>.gz
    first_at: datetime | None = None
    last_at: datetime | None = None
    lines: int = 0
    original_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    archive_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    original_sha256: str = Field(max_length=64)
    archive_sha256: str = Field(max_length=64)
    members_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    archived_at: datetime = Field(default_factory=utcnow)
    offsite_key: str | None = Field(default=None, max_length=700)
    local_deleted_at: datetime | None = None
    offsite_deleted_at: datetime | None = None


class AlertSent(SQLModel, table=True):
    """An alert delivered to the alert channels; `alert_key` lets a flow send each alert once
    (a certificate's 30-, 7- and 1-day warnings) instead of on every run."""

    __tablename__ = "alert_sent"
    __table_args__ = (Index("ix_alert_sent_key", "environment", "alert_key"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64)
    alert_key: str = Field(max_length=500)
    severity: str = Field(max_length=16)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    channels: str = Field(default="", max_length=500)
    sent_at: datetime = Field(default_factory=utcnow)


class Experiment(SQLModel, table=True):
    """A strategy A/B experiment's lifecycle: created (draft), started (running), concluded.
    Experiments the platform runs on its own are registered here as `source = "platform"`."""

    __tablename__ = "experiment"
    __table_args__ = (Index("ux_experiment_environment_name", "environment", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    name: str = Field(max_length=200)
    strategy: str = Field(max_length=200)
    status: str = Field(max_length=16)  # draft, running, concluded
    source: str = Field(default="tradeops", max_length=16)  # tradeops (CLI) or platform (discovered)
    control_params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    variant_params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    split: str = Field(max_length=16)  # "90/10": control/variant percent of traffic
    capital_pct: float  # of the environment's total capital
    capital_usd: float | None = None
    duration_days: int
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    started_by: str | None = Field(default=None, max_length=200)
    started_at: datetime | None = None
    ends_at: datetime | None = None
    concluded_by: str | None = Field(default=None, max_length=200)
    concluded_at: datetime | None = None
    conclusion: str | None = Field(default=None, max_length=16)  # promote, rollback
    conclusion_note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    variant_version: str | None = Field(default=None, max_length=64)  # the strategy version the variant runs
    # the production pointer around the experiment: {"control": {commit, tag}} at start, then
    # {"promoted": {...}} by `conclude --action promote`, {"rolled_back": {...}} by `experiment rollback`
    production_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class ExperimentEvaluation(SQLModel, table=True):
    """One evaluation of one experiment: every statistic, the decision and the rule that fired."""

    __tablename__ = "experiment_evaluation"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    evaluated_at: datetime = Field(default_factory=utcnow)
    n_control: int
    n_variant: int
    decision: str = Field(max_length=16)
    rule: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    p_value: float | None = None
    lift: float | None = None
    statistics_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    findings_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    report: str | None = Field(default=None, max_length=1000)


class Lease(SQLModel, table=True):
    """A lock held by one process for one target (a backup run, a database being dumped or
    maintained). It lives in the ops store, so every run on every machine sees it, and it expires:
    a holder renews it while it works, and a holder that was killed loses it when `expires_at`
    passes, or at once when it was on this host and its process is gone."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=64)  # unique per acquisition
    host: str = Field(max_length=255)
    pid: int
    pid_started: str | None = Field(default=None, max_length=32)  # /proc start time: a reused pid is not the holder
    flow_run_id: str | None = Field(default=None, max_length=36)
    purpose: str = Field(default="", max_length=500)
    acquired_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Incident(SQLModel, table=True):
    """An incident (runbooks 003 "Severity Classification" SEV-1..4, 004 "Incident Classification"
    P1..P4): opened by escalation or by hand, one open incident per condition (`condition_key`), with
    the response and resolution targets of its severity; its timeline is `incident_event`."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_condition", "environment", "condition_key", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    condition_key: str = Field(max_length=500)  # what it dedups on: <condition>:<target>
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    severity: str = Field(max_length=2)  # P1..P4
    status: str = Field(default="open", max_length=16)  # open, acknowledged, resolved
    opened_at: datetime = Field(default_factory=utcnow)
    opened_by: str = Field(max_length=200)
    response_due_at: datetime
    resolution_due_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=200)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)  # the run that opened it


class IncidentEvent(SQLModel, table=True):
    """One line of an incident's timeline: an alert, a remediation, an acknowledgement, a note,
    a state change; each with its time, actor and flow run."""

    __tablename__ = "incident_event"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=16)  # opened, alert, remediation, ack, note, resolved, reopened
    actor: str = Field(max_length=200)
    flow_run_id: str | None = Field(default=None, max_length=36)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RemediationAttempt(SQLModel, table=True):
    """One remediation the health check made, or would have made (dry run), or refused (guard)."""

    __tablename__ = "remediation_attempt"
    __table_args__ = (Index("ix_remediation_attempt_condition", "environment", "condition_key", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64)
    condition_key: str = Field(max_length=500)
    action: str = Field(max_length=64)
    actor: str = Field(max_length=200)
    outcome: str = Field(max_length=16)  # fixed, failed, dry-run, refused, cooling-down
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    started_at: datetime = Field(default_factory=utcnow)


class AlertGroup(SQLModel, table=True):
    """A firing condition's alert state, Alertmanager style: one notification when it starts, a
    reminder each repeat interval while it lasts, a resolved notice when it clears."""

    __tablename__ = "alert_group"
    __table_args__ = (Index("ux_alert_group_key", "environment", "group_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    group_key: str = Field(max_length=500)  # <condition>:<target>
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16)  # firing, resolved
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    last_notified_at: datetime | None = None
    notifications: int = 0
    occurrences: int = 0  # failing runs since it started firing
    resolved_at: datetime | None = None
    silenced_until: datetime | None = None


class ChangeRequest(SQLModel, table=True):
    """A change request (runbook 003 "Change Management", CR-YYYY-NNN): the template's fields, its
    risk, who submitted it, and the runs and audit entries that carried it out (`links_json`)."""

    __tablename__ = "change_request"
    __table_args__ = (Index("ux_change_request_environment_number", "environment", "number", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=64)
    number: str = Field(max_length=16)  # CR-YYYY-NNN, per environment
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # what and why
    benefits: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    implementation_plan: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    impacts: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    mitigation: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    rollback_plan: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    risk: str = Field(max_length=16)  # low, medium, high, critical (the template's priority)
    status: str = Field(max_length=16)  # submitted, approved, implemented, rejected
    source: str = Field(default="cli", max_length=32)  # cli, dependency-update, strategy-promotion
    submitted_by: str = Field(max_length=200)
    submitted_at: datetime = Field(default_factory=utcnow)
    implemented_by: str | None = Field(default=None, max_length=200)
    implemented_at: datetime | None = None
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    links_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class ChangeApproval(SQLModel, table=True):
    """One approval of a change request: its kind (technical, business, security), by whom, as
    which role, and the audit entry that records it."""

    __tablename__ = "change_approval"

    id: int | None = Field(default=None, primary_key=True)
    change_request_id: int = Field(foreign_key="change_request.id", index=True)
    kind: str = Field(max_length=16)
    approved_by: str = Field(max_length=200)
    role: str | None = Field(default=None, max_length=64)
    approved_at: datetime = Field(default_factory=utcnow)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    audit_entry_id: int | None = None


class SizeSample(SQLModel, table=True):
    """One size measured at a health-check or backup run: a database or one of its largest tables,
    a disk, a git repository, a backup set. The capacity report trends them (issue 19)."""

    __tablename__ = "size_sample"
    __table_args__ = (Index("ix_size_sample_series", "environment", "kind", "series", "sampled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64)
    source: str = Field(max_length=64)  # the flow that measured it
    kind: str = Field(max_length=16)  # database | table | disk | repository | backup_set
    series: str = Field(max_length=300)  # "platform", "platform/public.trades", "/data", ...
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    capacity_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    sampled_at: datetime = Field(default_factory=utcnow)


class PerformanceBaseline(SQLModel, table=True):
    """One operation's latency baseline over a rolling window (runbook 001 "Performance Baseline
    Management"): p50/p95/p99 and the mean and standard deviation the 2-sigma rule reads."""

    __tablename__ = "performance_baseline"
    __table_args__ = (Index("ix_performance_baseline_operation", "environment", "operation", "computed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=36)
    environment: str = Field(max_length=64)
    source: str = Field(max_length=16)  # flow | task | request
    operation: str = Field(max_length=300)
    window_start: datetime
    window_end: datetime
    samples: int
    p50_seconds: float
    p95_seconds: float
    p99_seconds: float
    mean_seconds: float
    stddev_seconds: float
    computed_at: datetime = Field(default_factory=utcnow)
