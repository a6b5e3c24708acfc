"""What happened in a period, from the ops store: each flow run's recorded outcome, backup sets,
DR drills, experiment evaluations, incidents, change requests, alerts, size and baseline changes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import select

from tasks.opsreport.period import ReportPeriod
from tradeops.store import (
    AlertSent, BackupSet, ChangeRequest, DrDrill, Experiment, ExperimentEvaluation, FlowRunSummary, Incident,
    PerformanceBaseline, SizeSample, session_for,
)


@dataclass(frozen=True)
class RunLine:
    flow: str
    state: str
    message: str
    flow_run_id: str | None
    at: datetime


@dataclass
class FlowTally:
    flow: str
    runs: int = 0
    failed: int = 0
    last_state: str = ""
    last_at: datetime | None = None


@dataclass(frozen=True)
class SizeChange:
    kind: str
    series: str
    first_bytes: int
    last_bytes: int


@dataclass(frozen=True)
class BaselineChange:
    operation: str
    previous_p95: float | None
    p95: float
    samples: int


@dataclass
class OpsPeriod:
    """Everything the report shows, plain values."""
    runs: list[RunLine] = field(default_factory=list)
    tallies: list[FlowTally] = field(default_factory=list)
    backups: list[tuple] = field(default_factory=list)  # (set_id, kind, status, verified, flow_run_id)
    drills: list[tuple] = field(default_factory=list)  # (set_id, passed, rto, rpo, flow_run_id)
    evaluations: list[tuple] = field(default_factory=list)  # (experiment, decision, p_value, flow_run_id)
    incidents: list[tuple] = field(default_factory=list)  # (id, severity, status, title, opened_at, resolved_at)
    changes: list[tuple] = field(default_factory=list)  # (number, title, risk, status, submitted_by)
    alerts: Counter = field(default_factory=Counter)  # severity -> alerts sent
    sizes: list[SizeChange] = field(default_factory=list)
    baselines: list[BaselineChange] = field(default_factory=list)

    @property
    def failures(self) -> list[RunLine]:
        return [r for r in self.runs if r.state != "Completed"]


def _in(column, period: ReportPeriod):  # noqa: ANN001, ANN202 - a SQL condition: the column inside the period
    return (column >= period.start) & (column < period.end)


def gather(store_url: str, environment: str, period: ReportPeriod) -> OpsPeriod:
    found = OpsPeriod()
    with session_for(store_url) as session:
        summaries = session.exec(select(FlowRunSummary).where(
            FlowRunSummary.environment == environment, _in(FlowRunSummary.recorded_at, period),
            FlowRunSummary.flow_name != "ops-report").order_by(FlowRunSummary.recorded_at)).all()
        found.runs = [RunLine(s.flow_name, s.state, s.message, s.flow_run_id, s.recorded_at) for s in summaries]
        tallies: dict[str, FlowTally] = {}
        for run in found.runs:
            tally = tallies.setdefault(run.flow, FlowTally(run.flow))
            tally.runs += 1
            tally.failed += run.state != "Completed"
            tally.last_state, tally.last_at = run.state, run.at
        found.tallies = sorted(tallies.values(), key=lambda t: (-t.failed, t.flow))
        found.backups = [(b.set_id, b.kind, b.status, b.verified_at is not None, b.flow_run_id)
                         for b in session.exec(select(BackupSet).where(
                             BackupSet.environment == environment, _in(BackupSet.created_at, period))
                             .order_by(BackupSet.created_at)).all()]
        found.drills = [(d.set_id, d.passed, d.rto_seconds, d.rpo_seconds, d.flow_run_id)
                        for d in session.exec(select(DrDrill).where(
                            DrDrill.environment == environment, _in(DrDrill.started_at, period))).all()]
        found.evaluations = [(name, e.decision, e.p_value, e.flow_run_id) for e, name in session.exec(
            select(ExperimentEvaluation, Experiment.name).join(Experiment)
            .where(Experiment.environment == environment, _in(ExperimentEvaluation.evaluated_at, period))
            .order_by(ExperimentEvaluation.evaluated_at)).all()]
        found.incidents = [(i.id, i.severity, i.status, i.title, i.opened_at, i.resolved_at)
                           for i in session.exec(select(Incident).where(
                               Incident.environment == environment,
                               _in(Incident.opened_at, period) | _in(Incident.resolved_at, period)
                               | (Incident.status != "resolved"))
                               .order_by(Incident.opened_at)).all()]
        found.changes = [(c.number, c.title, c.risk, c.status, c.submitted_by)
                         for c in session.exec(select(ChangeRequest).where(
                             ChangeRequest.environment == environment, _in(ChangeRequest.submitted_at, period)
                             | _in(ChangeRequest.implemented_at, period))).all()]
        found.alerts = Counter(a.severity for a in session.exec(select(AlertSent).where(
            AlertSent.environment == environment, _in(AlertSent.sent_at, period))).all())
        found.sizes = size_changes(session.exec(select(SizeSample).where(
            SizeSample.environment == environment, _in(SizeSample.sampled_at, period),
            SizeSample.kind.in_(("database", "disk", "backup_set"))).order_by(SizeSample.sampled_at)).all())
        found.baselines = baseline_changes(session.exec(select(PerformanceBaseline).where(
            PerformanceBaseline.environment == environment).order_by(PerformanceBaseline.computed_at)).all(), period)
    return found


def size_changes(samples: list[SizeSample]) -> list[SizeChange]:
    first: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], int] = {}
    for s in samples:
        first.setdefault((s.kind, s.series), s.size_bytes)
        last[(s.kind, s.series)] = s.size_bytes
    return [SizeChange(kind, series, first[(kind, series)], last[(kind, series)]) for kind, series in sorted(last)]


def baseline_changes(rows: list[PerformanceBaseline], period: ReportPeriod) -> list[BaselineChange]:
    """Each operation's baseline computed in the period against the one before it."""
    history: dict[str, list[PerformanceBaseline]] = {}
    for row in rows:
        history.setdefault(row.operation, []).append(row)
    changes = []
    for operation, computed in sorted(history.items()):
        recent = [r for r in computed if period.start <= _aware(r.computed_at, period.start) < period.end]
        if not recent:
            continue
        before = [r for r in computed if _aware(r.computed_at, period.start) < period.start]
        changes.append(BaselineChange(operation, before[-1].p95_seconds if before else None, recent[-1].p95_seconds,
                                      recent[-1].samples))
    return changes


def _aware(moment: datetime, like: datetime) -> datetime:
    """SQLite gives naive UTC times back; compare them with the period's aware ones."""
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None and like.tzinfo is not None else moment

