"""The operations calendar (runbook 003 crontab, 001 schedules, 004 daily/weekly/quarterly), UTC.

One entry per scheduled job, plus the on-demand jobs (no schedule). Only entries whose flow exists
become deployments; `prefect.yaml` must list exactly those (tests/test_deployments.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flows import FLOWS
from tradeops.errors import UsageError


@dataclass(frozen=True)
class ScheduledJob:
    flow: str
    deployment: str
    cron: str
    day_or: bool
    source: str
    parameters: dict = field(default_factory=dict)  # besides `environment`

    @property
    def schedule_text(self) -> str:
        return f"{self.cron} UTC" + ("" if self.day_or else " (day-of-month AND day-of-week)")


CALENDAR: tuple[ScheduledJob, ...] = (
    ScheduledJob("health-check", "health-check-every-5-minutes", "*/5 * * * *", True,
                 "runbook 003 crontab: */5 * * * * health-check.sh"),
    ScheduledJob("wal-archive", "wal-archive-every-5-minutes", "*/5 * * * *", True,
                 "runbook 004 Point-in-Time Recovery (issue 20): WAL offsite, gaps alerted; the offsite RPO is "
                 "archive_timeout plus this interval"),
    ScheduledJob("base-backup", "base-backup-0130", "30 1 * * *", True,
                 "runbook 004 Point-in-Time Recovery (issue 20): a daily base backup, before the 02:00 dump"),
    ScheduledJob("daily-backup", "daily-backup-0200", "0 2 * * *", True,
                 "runbooks 003 crontab and 004: daily backup at 02:00"),
    ScheduledJob("weekly-backup", "weekly-backup-sunday", "0 0 * * 0", True,
                 "runbooks 000 weekly git backup, 002 Weekly Full Backup"),
    ScheduledJob("db-maintenance", "db-maintenance-sunday-0300", "0 3 * * 0", True,
                 "runbook 001 Database Optimization: Sundays 03:00 UTC"),
    ScheduledJob("log-archival", "log-archival-daily", "30 2 * * *", True,
                 "runbook 001 Log Archival, 003 Log Rotation (daily)"),
    ScheduledJob("cert-check", "cert-check-daily-0200", "0 2 * * *", True,
                 "runbook 001 Certificate Management: daily at 02:00 UTC"),
    ScheduledJob("dependency-update", "dependency-update-first-monday", "0 4 1-7 * 1", False,
                 "runbook 001 Dependency Management: first Monday of month, 04:00 UTC"),
    ScheduledJob("dr-drill", "dr-drill-quarterly", "0 5 1 1,4,7,10 *", True,
                 "runbooks 000 Recovery Testing, 003 Disaster Recovery Testing: quarterly"),
    ScheduledJob("experiment-evaluation", "experiment-evaluation-daily", "0 1 * * *", True,
                 "runbook 001 Strategy A/B Testing: daily evaluation"),
    ScheduledJob("audit-export", "audit-export-daily-0015", "15 0 * * *", True,
                 "runbook 000 Audit Trail Management: the day's audit entries and chain head offsite, kept 7 years"),
    ScheduledJob("compliance-report", "compliance-report-monthly", "0 6 1 * *", True,
                 "runbook 000 Regulatory Compliance: monthly SOX report", {"period": "previous-month"}),
    ScheduledJob("compliance-report", "compliance-report-quarterly", "0 7 1 1,4,7,10 *", True,
                 "runbook 000 Regulatory Compliance: quarterly FINRA 15c3-5 review", {"period": "previous-quarter"}),
    ScheduledJob("capacity-report", "capacity-report-monthly", "0 8 1 * *", True,
                 "runbook 002 Capacity Planning: monthly assessment (90 days of sizes)"),
    ScheduledJob("capacity-report", "capacity-report-quarterly", "30 8 1 1,4,7,10 *", True,
                 "runbooks 003 (quarterly), 004 Quarterly Maintenance: review growth trends (a year of sizes)",
                 {"window_days": 365, "horizon_days": 180}),
    ScheduledJob("ops-report", "ops-report-daily-2330", "30 23 * * *", True,
                 "runbook 004 End of Day Procedures: Daily Report Generation (the day so far, at its end)",
                 {"period": "day"}),
    ScheduledJob("ops-report", "ops-report-weekly-monday-0600", "0 6 * * 1", True,
                 "runbook 004 Weekly Maintenance (every Monday): weekly report; 003 Weekly Health Audit",
                 {"period": "week"}),
)


@dataclass(frozen=True)
class OnDemandJob:
    """A deployment with no schedule: ops start it from the UI (Run) or `prefect deployment run`."""
    flow: str
    deployment: str
    source: str


ON_DEMAND: tuple[OnDemandJob, ...] = (
    OnDemandJob("restore", "restore-on-demand", "runbooks 004 Recovery Procedures, 000 Emergency Procedures"),
    # verify-backups is also the last step of every daily and weekly backup (a subflow): a new set
    # is proven minutes after it is made, so Sunday's 03:00 maintenance finds the 02:00 backup
    # verified (a 06:00 verification left it 25 h old, and every scheduled maintenance refused).
    OnDemandJob("verify-backups", "verify-backups-on-demand",
                "runbooks 002 Daily Backup Verification, 004 End of Day backup check: after every backup"),
    OnDemandJob("pitr-restore", "pitr-restore-on-demand", "runbook 004 Point-in-Time Recovery (restore_to_time.sh)"),
)


def on_demand_jobs() -> list[OnDemandJob]:
    return [job for job in ON_DEMAND if job.flow in FLOWS]


def scheduled_jobs() -> list[ScheduledJob]:
    """The calendar entries whose flow exists today: these are the deployments."""
    return [job for job in CALENDAR if job.flow in FLOWS]


def served_deployments(environment: str, schedules: dict[str, str] | None = None) -> list:
    """The scheduled and on-demand jobs as deployments served from one process (`tradeops serve`);
    `schedules`: another cron for some deployments, by name. Their runs act as the environment's
    service user (`[access] user`) and carry its tag from the start (a run of a deployment made
    elsewhere, prefect.yaml's, gets it when it starts)."""
    from prefect.schedules import Cron

    from blocks import TradeopsEnvironment
    from flows import load_flow
    from tasks.environment import USER_TAG

    service_user = TradeopsEnvironment.load(environment).access_default_user
    tags = ["tradeops", *([USER_TAG + service_user] if service_user else [])]
    schedules = dict(schedules or {})
    unknown = sorted(set(schedules) - {job.deployment for job in scheduled_jobs()})
    if unknown:
        raise UsageError(f"--schedule: no scheduled deployment named {', '.join(unknown)}; they are: "
                         + ", ".join(job.deployment for job in scheduled_jobs()))
    return [
        load_flow(job.flow).to_deployment(
            name=job.deployment, parameters={"environment": environment, **job.parameters}, description=job.source,
            schedules=[Cron(schedules.get(job.deployment, job.cron), timezone="UTC", day_or=job.day_or)],
            tags=tags,
        )
        for job in scheduled_jobs()
    ] + [
        load_flow(job.flow).to_deployment(name=job.deployment, parameters={"environment": environment},
                                          description=job.source, tags=tags)
        for job in on_demand_jobs()
    ]
