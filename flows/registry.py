"""The flow registry: every fact about a flow in one `FlowSpec` (issue 16).

The flow list (`flows.FLOWS`), the operations calendar (`deployments.calendar`), the privileged
flows' permissions (checked with `tasks.access.require_permission`), the failure-alert severity
(`flows.hooks`, `tradeops server sweep`) and quickstart's daily flows all read `REGISTRY`.
Adding a flow: one `FlowSpec` here, its deployment(s) in prefect.yaml, a page in docs/flows/
(docs/development.md "Adding a flow").

Severity of a failed run: runbook 001 "Alert Channels" routes critical to PagerDuty + SMS, high to
#ops-critical, medium to #ops-alerts, low to an email digest; the levels follow the incident
classes of runbooks 004 ("Incident Classification") and 003 ("Severity Classification"):
critical = data loss or outage (15 min response), high = major function impaired (1 h),
medium = minor function impaired (4 h), low = no immediate impact (24 h).

Schedules: the operations calendar (runbook 003 crontab, 001 schedules, 004 daily/weekly/quarterly),
UTC: a `Schedule` is a cron (a minute at the finest), an `IntervalSchedule` a number of seconds
(Prefect's Interval; `interval:` in prefect.yaml). The registry is data, without Prefect: the
lifecycle commands read it and must start fast; deployments/calendar.py makes Prefect schedules.
`PLANNED` holds the calendar entries of flows that do not exist yet: they become no deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_FAILURE_SEVERITY = "high"  # a flow nobody rated


@dataclass(frozen=True)
class Schedule:
    """One scheduled deployment of a flow: its name, a five-field cron (UTC) and the runbook line."""
    deployment: str
    cron: str
    source: str
    day_or: bool = True  # False: day-of-month AND day-of-week (Prefect's Cron day_or)
    parameters: dict = field(default_factory=dict)  # besides `environment`

    @property
    def text(self) -> str:
        return f"{self.cron} UTC" + ("" if self.day_or else " (day-of-month AND day-of-week)")

    def prefect_yaml(self) -> dict:
        """Its entry under `schedules:` in prefect.yaml."""
        return {"cron": self.cron, "timezone": "UTC", "day_or": self.day_or}

    def as_dict(self) -> dict:
        return {"cron": self.cron, "day_or": self.day_or, "timezone": "UTC"}


@dataclass(frozen=True)
class IntervalSchedule:
    """A deployment run every `seconds` (Prefect's Interval schedule): for what repeats faster than a
    cron's one minute (runbook 001: the shallow health check every 30 s)."""
    deployment: str
    seconds: int
    source: str
    parameters: dict = field(default_factory=dict)  # besides `environment`

    @property
    def text(self) -> str:
        return f"every {self.seconds} s"

    def prefect_yaml(self) -> dict:
        return {"interval": self.seconds, "timezone": "UTC"}

    def as_dict(self) -> dict:
        return {"interval_seconds": self.seconds, "timezone": "UTC"}


@dataclass(frozen=True)
class OnDemand:
    """A deployment with no schedule: ops start it from the UI (Run) or `prefect deployment run`."""
    deployment: str
    source: str


@dataclass(frozen=True)
class FlowSpec:
    name: str  # kebab-case, the flow's @flow(name=...) and `tradeops run NAME`
    entrypoint: str  # "module:function"
    severity: str  # of a failed run's alert
    permission: str | None = None  # what the acting user needs to run it (privileged flows only)
    schedules: tuple[Schedule | IntervalSchedule, ...] = ()
    on_demand: OnDemand | None = None
    quickstart_order: int | None = None  # position among quickstart's daily flows; None: not run there
    planted_failure: str | None = None  # why it ends Failed on the sandbox on purpose
    alerts_per_condition: bool = False  # alerts each condition itself, grouped (tasks/alert_groups.py): a
    # failed run that wrote its report sends no per-run alert; a crash still does


@dataclass(frozen=True)
class PlannedJob:
    """A calendar entry whose flow does not exist yet: listed, never deployed."""
    flow: str
    schedule: Schedule | IntervalSchedule


_SANDBOX_CERTIFICATES = "the sandbox plants an expired certificate and one expiring in 5 days"

REGISTRY: tuple[FlowSpec, ...] = (
    FlowSpec("health-check", "flows.health_check:health_check",
             # its findings alert per condition at their own severity (tasks/health/conditions.py);
             # this one is a crash's, or a failure before its report
             severity="medium", alerts_per_condition=True,
             schedules=(Schedule("health-check-every-5-minutes", "*/5 * * * *",
                                 "runbook 003 crontab: */5 * * * * health-check.sh; runbook 001 Check Levels: "
                                 "deep every 5m"),
                        IntervalSchedule("health-check-shallow-every-30-seconds", 30,
                                         "runbook 001 Check Levels: shallow every 30s (API connectivity, "
                                         "basic metrics)", parameters={"level": "shallow"})),
             quickstart_order=1, planted_failure=_SANDBOX_CERTIFICATES),
    FlowSpec("daily-backup", "flows.daily_backup:daily_backup", severity="critical",
             schedules=(Schedule("daily-backup-0200", "0 2 * * *",
                                 "runbooks 003 crontab and 004: daily backup at 02:00"),),
             # ends by verifying its set (verify-backups, a subflow)
             quickstart_order=2),
    FlowSpec("verify-backups", "flows.verify_backups:verify_backups", severity="high",
             # verify-backups is also the last step of every daily and weekly backup (a subflow): a new set
             # is proven minutes after it is made, so Sunday's 03:00 maintenance finds the 02:00 backup
             # verified (a 06:00 verification left it 25 h old, and every scheduled maintenance refused).
             on_demand=OnDemand("verify-backups-on-demand",
                                "runbooks 002 Daily Backup Verification, 004 End of Day backup check: "
                                "after every backup")),
    FlowSpec("weekly-backup", "flows.weekly_backup:weekly_backup", severity="critical",
             schedules=(Schedule("weekly-backup-sunday", "0 0 * * 0",
                                 "runbooks 000 weekly git backup, 002 Weekly Full Backup"),)),
    FlowSpec("restore", "flows.restore:restore", severity="critical", permission="backup.restore",
             on_demand=OnDemand("restore-on-demand", "runbooks 004 Recovery Procedures, 000 Emergency Procedures")),
    FlowSpec("dr-drill", "flows.dr_drill:dr_drill", severity="critical",
             schedules=(Schedule("dr-drill-quarterly", "0 5 1 1,4,7,10 *",
                                 "runbooks 000 Recovery Testing, 003 Disaster Recovery Testing: quarterly"),),
             # a first run ends with the backup restored and proven
             quickstart_order=6),
    FlowSpec("db-maintenance", "flows.db_maintenance:db_maintenance", severity="medium",
             permission="database.maintain",
             schedules=(Schedule("db-maintenance-sunday-0300", "0 3 * * 0",
                                 "runbook 001 Database Optimization: Sundays 03:00 UTC"),)),
    FlowSpec("log-archival", "flows.log_archival:log_archival", severity="medium",
             schedules=(Schedule("log-archival-daily", "30 2 * * *",
                                 "runbook 001 Log Archival, 003 Log Rotation (daily)"),),
             quickstart_order=3),
    FlowSpec("cert-check", "flows.cert_check:cert_check", severity="high",
             schedules=(Schedule("cert-check-daily-0200", "0 2 * * *",
                                 "runbook 001 Certificate Management: daily at 02:00 UTC"),),
             quickstart_order=4, planted_failure=_SANDBOX_CERTIFICATES + " (no renew command is set)"),
    FlowSpec("experiment-evaluation", "flows.experiment_evaluation:experiment_evaluation", severity="medium",
             schedules=(Schedule("experiment-evaluation-daily", "0 1 * * *",
                                 "runbook 001 Strategy A/B Testing: daily evaluation"),),
             quickstart_order=5),
    FlowSpec("compliance-report", "flows.compliance_report:compliance_report", severity="high",
             permission="compliance.report",  # compliance officers and administrators
             schedules=(Schedule("compliance-report-monthly", "0 6 1 * *",
                                 "runbook 000 Regulatory Compliance: monthly SOX report",
                                 parameters={"period": "previous-month"}),
                        Schedule("compliance-report-quarterly", "0 7 1 1,4,7,10 *",
                                 "runbook 000 Regulatory Compliance: quarterly FINRA 15c3-5 review",
                                 parameters={"period": "previous-quarter"}))),
    FlowSpec("audit-export", "flows.audit_export:audit_export", severity="high",
             schedules=(Schedule("audit-export-daily-0015", "15 0 * * *",
                                 "runbook 000 Audit Trail Management: the day's audit entries and chain head "
                                 "offsite, kept 7 years"),),
             quickstart_order=7),
    FlowSpec("wal-archive", "flows.wal_archive:wal_archive",
             severity="critical",  # WAL not offsite: point-in-time recovery past it is lost with the host
             schedules=(Schedule("wal-archive-every-5-minutes", "*/5 * * * *",
                                 "runbook 004 Point-in-Time Recovery (issue 20): WAL offsite, gaps alerted; the "
                                 "offsite RPO is archive_timeout plus this interval"),)),
    FlowSpec("base-backup", "flows.base_backup:base_backup", severity="critical",
             schedules=(Schedule("base-backup-0130", "30 1 * * *",
                                 "runbook 004 Point-in-Time Recovery (issue 20): a daily base backup, before the "
                                 "02:00 dump"),)),
    FlowSpec("pitr-restore", "flows.pitr_restore:pitr_restore", severity="critical", permission="backup.restore",
             on_demand=OnDemand("pitr-restore-on-demand",
                                "runbook 004 Point-in-Time Recovery (restore_to_time.sh)")),
    FlowSpec("capacity-report", "flows.capacity_report:capacity_report",
             severity="medium",  # a plan, not a control: its critical findings fail the run
             permission="capacity.report",  # issue 19: no runbook role names it, so administrators (`*`)
             schedules=(Schedule("capacity-report-monthly", "0 8 1 * *",
                                 "runbook 002 Capacity Planning: monthly assessment (90 days of sizes)"),
                        Schedule("capacity-report-quarterly", "30 8 1 1,4,7,10 *",
                                 "runbooks 003 (quarterly), 004 Quarterly Maintenance: review growth trends "
                                 "(a year of sizes)",
                                 parameters={"window_days": 365, "horizon_days": 180})),
             quickstart_order=8),
    FlowSpec("ops-report", "flows.ops_report:ops_report", severity="medium",
             permission="ops.report",  # issue 19: no runbook role names it, so administrators (`*`)
             schedules=(Schedule("ops-report-daily-2330", "30 23 * * *",
                                 "runbook 004 End of Day Procedures: Daily Report Generation (the day so far, "
                                 "at its end)", parameters={"period": "day"}),
                        Schedule("ops-report-weekly-monday-0600", "0 6 * * 1",
                                 "runbook 004 Weekly Maintenance (every Monday): weekly report; 003 Weekly Health "
                                 "Audit", parameters={"period": "week"})),
             quickstart_order=99),  # last: it reports the runs before it
    FlowSpec("performance-baselines", "flows.performance_baselines:performance_baselines", severity="medium",
             permission="performance.baseline",  # issue 19: changes what health checks compare with; administrators
             schedules=(Schedule("performance-baselines-weekly-monday", "0 0 * * 1",
                                 "runbook 001 Performance Baseline Management: weekly, Mondays 00:00 UTC"),
                        Schedule("performance-baselines-monthly-first-tuesday", "30 4 1-7 * 2",
                                 "runbook 004 Monthly Maintenance (first Tuesday): Performance Baseline",
                                 day_or=False)),
             quickstart_order=9),
    FlowSpec("correlation-matrix", "flows.correlation_matrix:correlation_matrix_flow", severity="high",
             permission="correlation.update",  # issue 19: it changes what trading reads; administrators (`*`)
             schedules=(Schedule("correlation-matrix-weekly-monday-0030", "30 0 * * 1",
                                 "runbook 001 Correlation Matrix Updates (30-day window; no schedule given: weekly, "
                                 "after the Monday baselines)"),),
             quickstart_order=10),
    FlowSpec("dependency-update", "flows.dependency_update:dependency_update",
             severity="high",  # a known vulnerability left in an application, or updates that break its tests
             permission="dependency.update",  # issue 19: no runbook role names it, so administrators (`*`)
             schedules=(Schedule("dependency-update-first-monday", "0 4 1-7 * 1",
                                 "runbook 001 Dependency Management: first Monday of month, 04:00 UTC",
                                 day_or=False),),
             # not in quickstart: the sandbox plants riskcalc 2.1.0, vulnerable and fixed only in 2.2.0 (past
             # the patch level), so a run there ends "vulnerabilities found" (Failed) by design
             ),
)

PLANNED: tuple[PlannedJob, ...] = ()

SPECS: dict[str, FlowSpec] = {spec.name: spec for spec in REGISTRY}


def spec(name: str) -> FlowSpec:
    return SPECS[name]


def permission_for(name: str) -> str:
    """The permission a privileged flow's acting user needs."""
    permission = SPECS[name].permission
    if permission is None:
        raise KeyError(f"flow {name!r} needs no permission")
    return permission


def severity_for(name: str) -> str:
    """The severity of a failed run of flow `name` (a flow not in the registry: the default)."""
    found = SPECS.get(name)
    return found.severity if found else DEFAULT_FAILURE_SEVERITY


def flow_severities() -> dict[str, str]:
    """{flow name: severity} for every registered flow: what the zombie sweep and automation watch."""
    return {s.name: s.severity for s in REGISTRY}


def flow_permissions() -> dict[str, str]:
    """{flow name: permission} of the privileged flows."""
    return {s.name: s.permission for s in REGISTRY if s.permission}


def quickstart_flows() -> list[FlowSpec]:
    """The flows quickstart runs, in order: the morning check, the day's jobs in runbook order, then
    a DR drill so a first run ends with the backup restored and proven."""
    return sorted((s for s in REGISTRY if s.quickstart_order is not None), key=lambda s: s.quickstart_order)
