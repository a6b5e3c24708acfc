"""The operations calendar (runbook 003 crontab, 001 schedules, 004 daily/weekly/quarterly), UTC.

One entry per scheduled job, plus the on-demand jobs (no schedule), built from the flow registry
(flows/registry.py, which holds the crons and their runbook lines). Only entries whose flow exists
become deployments; `prefect.yaml` must list exactly those (tests/test_deployments.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prefect.schedules import Cron, Interval
from prefect.schedules import Schedule as PrefectSchedule

from blocks import TradeopsEnvironment
from flows import FLOWS, load_flow
from flows.registry import PLANNED, REGISTRY, IntervalSchedule, Schedule
from tasks.environment import USER_TAG
from tradeops.errors import UsageError

# One run of a deployment at a time, served or deployed from prefect.yaml (its `concurrency_limit: 1`):
# a 30-second shallow check slower than 30 s waits instead of running beside the previous one.
CONCURRENCY_LIMIT = 1


@dataclass(frozen=True)
class ScheduledJob:
    """One scheduled deployment: its flow and its schedule, a cron (`Schedule`) or an interval in
    seconds (`IntervalSchedule`)."""
    flow: str
    schedule: Schedule | IntervalSchedule

    @property
    def deployment(self) -> str:
        return self.schedule.deployment

    @property
    def source(self) -> str:
        return self.schedule.source

    @property
    def parameters(self) -> dict:  # besides `environment`
        return dict(self.schedule.parameters)

    @property
    def cron(self) -> str | None:
        """Its cron; None for an interval schedule."""
        return getattr(self.schedule, "cron", None)

    @property
    def day_or(self) -> bool:
        return getattr(self.schedule, "day_or", True)

    @property
    def interval_seconds(self) -> int | None:
        """Its interval; None for a cron schedule."""
        return getattr(self.schedule, "seconds", None)

    @property
    def schedule_text(self) -> str:
        return self.schedule.text


def _scheduled(flow: str, schedule: Schedule | IntervalSchedule) -> ScheduledJob:
    return ScheduledJob(flow, schedule)


# Every flow's schedules (flows/registry.py), then the planned ones (their flow does not exist yet).
CALENDAR: tuple[ScheduledJob, ...] = (
    *(_scheduled(spec.name, schedule) for spec in REGISTRY for schedule in spec.schedules),
    *(_scheduled(job.flow, job.schedule) for job in PLANNED),
)


@dataclass(frozen=True)
class OnDemandJob:
    """A deployment with no schedule: ops start it from the UI (Run) or `prefect deployment run`."""
    flow: str
    deployment: str
    source: str


ON_DEMAND: tuple[OnDemandJob, ...] = tuple(
    OnDemandJob(spec.name, spec.on_demand.deployment, spec.on_demand.source) for spec in REGISTRY if spec.on_demand)


def on_demand_jobs() -> list[OnDemandJob]:
    return [job for job in ON_DEMAND if job.flow in FLOWS]


def scheduled_jobs() -> list[ScheduledJob]:
    """The calendar entries whose flow exists today: these are the deployments."""
    return [job for job in CALENDAR if job.flow in FLOWS]


def served_deployments(environment: str, schedules: dict[str, str] | None = None) -> list:
    """The scheduled and on-demand jobs as deployments served from one process (`tradeops serve`);
    `schedules`: another cron for some deployments, by name (an interval
    deployment's too: it then runs on that cron). Their runs act as the environment's
    service user (`[access] user`) and carry its tag from the start (a run of a deployment made
    elsewhere, prefect.yaml's, gets it when it starts)."""
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
            schedules=[prefect_schedule(job.schedule, schedules.get(job.deployment))],
            tags=tags, concurrency_limit=CONCURRENCY_LIMIT,
        )
        for job in scheduled_jobs()
    ] + [
        load_flow(job.flow).to_deployment(name=job.deployment, parameters={"environment": environment},
                                          description=job.source, tags=tags, concurrency_limit=CONCURRENCY_LIMIT)
        for job in on_demand_jobs()
    ]


def prefect_schedule(schedule: Schedule | IntervalSchedule, cron: str | None = None) -> PrefectSchedule:
    """Prefect's schedule of a registry schedule; `cron`: another cron for this once (`tradeops serve
    --schedule`), which replaces an interval too."""
    if isinstance(schedule, IntervalSchedule):
        return Cron(cron, timezone="UTC") if cron else Interval(timedelta(seconds=schedule.seconds), timezone="UTC")
    return Cron(cron or schedule.cron, timezone="UTC", day_or=schedule.day_or)
