"""An experiment's life in the ops store: created (draft), started (running), concluded.

Every change here is a privileged action: the CLI checks the actor's role first and audits the
outcome. Experiments the platform runs itself (found by the configured discovery query) are
registered as running with `source = "platform"`, so the daily evaluation sees them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from tradeops.errors import UsageError
from tradeops.store import Experiment, ExperimentEvaluation, session_for
from tradeops.store.records import current_flow_run_id

STATUSES = ("draft", "running", "concluded")
CONCLUSIONS = ("promote", "rollback")
DEFAULT_DURATION_DAYS = 28  # runbook 000: experiments are judged over weeks; the role table caps it
# A promotion rests on the latest evaluation, and only while it is fresh: the evaluation runs daily
# (01:00 UTC), so two days allow one missed run and never a week-old answer.
PROMOTION_EVIDENCE_MAX_AGE = timedelta(days=2)


class UnknownExperiment(UsageError):
    """No experiment with that id or name in this environment (exit 2)."""


def parse_split(text: str) -> tuple[int, int]:
    """`90/10` -> (90, 10): two positive whole percentages that add up to 100."""
    parts = text.split("/")
    try:
        control, variant = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"split {text!r}: expected CONTROL/VARIANT percentages such as 90/10") from None
    if control <= 0 or variant <= 0 or control + variant != 100:
        raise UsageError(f"split {text!r}: the two percentages must be positive and add up to 100")
    return control, variant


def parse_params(items: list[str]) -> dict:
    """`--param key=value` items (values read as JSON when they are, else kept as text)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: expected key=value")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


@dataclass(frozen=True)
class Capital:
    usd: float | None
    pct: float


def parse_capital(text: str, total_usd: float | None) -> Capital:
    """`5%` of the environment's total capital, or an amount in USD."""
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            return Capital(pct / 100 * total_usd if total_usd else None, pct)
        usd = float(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise UsageError(f"--capital {text!r}: expected an amount in USD or a percentage such as 5%") from None
    if not total_usd:
        raise UsageError("--capital as an amount needs [experiments] total_capital_usd in the configuration")
    return Capital(usd, 100 * usd / total_usd)


def arm_capital_pct(strategy: str, experiments: list[Experiment]) -> float:
    """The largest share of total capital one version of `strategy` (control or variant) gets
    across these experiments (runbook 000's FINRA check: 5% per strategy)."""
    arms = [0.0, 0.0]
    for row in experiments:
        if row.strategy == strategy:
            for arm, share in enumerate(parse_split(row.split)):
                arms[arm] += row.capital_pct * share / 100
    return max(arms)


def find_experiment(store_url: str, environment: str, ref: str | int) -> Experiment:
    """By id (a number) or by name."""
    with session_for(store_url) as session:
        query = select(Experiment).where(Experiment.environment == environment)
        text = str(ref)
        row = session.exec(query.where(Experiment.id == int(text))).first() if text.isdigit() else None
        row = row or session.exec(query.where(Experiment.name == text)).first()
    if row is None:
        raise UnknownExperiment(f"no experiment {ref!r} in environment {environment!r} "
                                "(`tradeops experiment list` shows them)")
    return row


def list_experiments(store_url: str, environment: str, status: str | None = None) -> list[Experiment]:
    with session_for(store_url) as session:
        query = select(Experiment).where(Experiment.environment == environment)
        if status:
            query = query.where(Experiment.status == status)
        return list(session.exec(query.order_by(Experiment.id)).all())


def _save(store_url: str, row: Experiment) -> Experiment:
    with session_for(store_url) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def create_experiment(store_url: str, environment: str, name: str, strategy: str, variant_params: dict,
                      split: str, capital: Capital, duration_days: int, user: str,
                      control_params: dict | None = None, variant_version: str | None = None) -> Experiment:
    with session_for(store_url) as session:
        clash = session.exec(select(Experiment).where(Experiment.environment == environment,
                                                      Experiment.name == name)).first()
    if clash is not None:
        raise UsageError(f"experiment {name!r} exists already (id {clash.id})")
    return _save(store_url, Experiment(
        environment=environment, name=name, strategy=strategy, status="draft",
        control_params_json=json.dumps(control_params or {}), variant_params_json=json.dumps(variant_params),
        split=split, capital_pct=capital.pct, capital_usd=capital.usd, duration_days=duration_days,
        created_by=user, variant_version=variant_version))


def start_experiment(store_url: str, row: Experiment, user: str, now: datetime | None = None,
                     control: dict | None = None) -> Experiment:
    """Running from now until its planned end; `control`: where production is now (commit, tag)."""
    if row.status != "draft":
        raise UsageError(f"experiment {row.name!r} is {row.status}; only a draft can be started")
    now = now or datetime.now(timezone.utc)
    row.status, row.started_by, row.started_at = "running", user, now
    row.ends_at = now + timedelta(days=row.duration_days)
    if control is not None:
        row.production_json = json.dumps({**production_record(row), "control": control})
    return _save(store_url, row)


def require_running(row: Experiment, action: str) -> None:
    if action not in CONCLUSIONS:
        raise UsageError(f"--action {action!r}: expected one of {', '.join(CONCLUSIONS)}")
    if row.status != "running":
        raise UsageError(f"experiment {row.name!r} is {row.status}; only a running experiment can be concluded")


def conclude_experiment(store_url: str, row: Experiment, action: str, user: str, note: str = "",
                        now: datetime | None = None, production: dict | None = None) -> Experiment:
    require_running(row, action)
    row.status, row.conclusion, row.conclusion_note = "concluded", action, note
    row.concluded_by, row.concluded_at = user, now or datetime.now(timezone.utc)
    if production:
        row.production_json = json.dumps({**production_record(row), **production})
    return _save(store_url, row)


def record_production(store_url: str, row: Experiment, **entries) -> Experiment:
    row.production_json = json.dumps({**production_record(row), **entries})
    return _save(store_url, row)


def production_record(row: Experiment) -> dict:
    return json.loads(row.production_json or "{}")


@dataclass(frozen=True)
class PromotionEvidence:
    """What a promotion rests on: the latest evaluation, and whether it allows promoting now."""

    evaluation: ExperimentEvaluation | None
    allows: bool
    reason: str


def promotion_evidence(store_url: str, row: Experiment, now: datetime | None = None) -> PromotionEvidence:
    """Promotion needs the latest evaluation to say promote, at most PROMOTION_EVIDENCE_MAX_AGE old."""
    now = now or datetime.now(timezone.utc)
    evaluations = evaluations_of(store_url, row.id)
    if not evaluations:
        return PromotionEvidence(None, False, f"experiment {row.name!r} has no evaluation on record "
                                 "(run `tradeops run experiment-evaluation --set experiment=...`)")
    last = evaluations[-1]
    when = last.evaluated_at if last.evaluated_at.tzinfo else last.evaluated_at.replace(tzinfo=timezone.utc)
    age = now - when
    if last.decision != "promote":
        return PromotionEvidence(last, False, f"the latest evaluation of {row.name!r} ({when:%Y-%m-%d %H:%M} UTC, "
                                 f"flow run {last.flow_run_id}) says {last.decision}, not promote: {last.rule}")
    if age > PROMOTION_EVIDENCE_MAX_AGE:
        return PromotionEvidence(last, False, f"the latest evaluation of {row.name!r} said promote on "
                                 f"{when:%Y-%m-%d %H:%M} UTC, {age.days} days ago: older than "
                                 f"{PROMOTION_EVIDENCE_MAX_AGE.days} days; evaluate it again")
    return PromotionEvidence(last, True, f"evaluation {last.id} ({when:%Y-%m-%d %H:%M} UTC, flow run "
                             f"{last.flow_run_id}) says promote: {last.rule}")


def register_platform_experiments(store_url: str, environment: str, found: list[dict]) -> list[str]:
    """Experiments the platform runs that the ops store does not know yet: registered as running."""
    known = {row.name for row in list_experiments(store_url, environment)}
    added = []
    for item in found:
        if item["name"] in known:
            continue
        start = _utc(item.get("start_date")) or datetime.now(timezone.utc)
        end = _utc(item.get("end_date"))
        parse_split(item["split"])
        _save(store_url, Experiment(
            environment=environment, name=item["name"], strategy=item["strategy"], status="running",
            source="platform", control_params_json=_json(item.get("control_params")),
            variant_params_json=_json(item.get("variant_params")), split=item["split"],
            capital_pct=float(item["capital_pct"]), duration_days=max(1, ((end - start).days if end else DEFAULT_DURATION_DAYS)),
            created_by="platform", started_by="platform", started_at=start, ends_at=end))
        added.append(item["name"])
    return added


def record_evaluation(store_url: str, experiment_id: int, statistics: dict, decision: str, rule: str,
                      findings: list[str], report: str | None) -> ExperimentEvaluation:
    with session_for(store_url) as session:
        row = ExperimentEvaluation(
            experiment_id=experiment_id, flow_run_id=current_flow_run_id(), n_control=statistics["n_control"],
            n_variant=statistics["n_variant"], decision=decision, rule=rule, p_value=statistics.get("p_value"),
            lift=statistics.get("lift"), statistics_json=json.dumps(statistics), findings_json=json.dumps(findings),
            report=report)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def strategy_sharpes(store_url: str, environment: str, strategy: str, exclude_id: int | None = None) -> list[float]:
    """The variant Sharpe ratio (per trade) of every other experiment of `strategy`, from its latest
    evaluation: the other trials a deflated Sharpe ratio counts."""
    with session_for(store_url) as session:
        ids = [e.id for e in session.exec(select(Experiment).where(Experiment.environment == environment,
                                                                    Experiment.strategy == strategy)).all()
               if e.id != exclude_id]
        latest: dict[int, ExperimentEvaluation] = {}
        if ids:
            for evaluation in session.exec(select(ExperimentEvaluation).where(ExperimentEvaluation.experiment_id.in_(ids))
                                           .order_by(ExperimentEvaluation.evaluated_at)).all():
                latest[evaluation.experiment_id] = evaluation
    sharpes = []
    for evaluation in latest.values():
        value = (json.loads(evaluation.statistics_json).get("sharpe") or {}).get("variant")
        if value is not None:
            sharpes.append(float(value))
    return sharpes


def evaluations_of(store_url: str, experiment_id: int) -> list[ExperimentEvaluation]:
    with session_for(store_url) as session:
        return list(session.exec(select(ExperimentEvaluation).where(ExperimentEvaluation.experiment_id == experiment_id)
                                 .order_by(ExperimentEvaluation.evaluated_at)).all())


def _utc(value) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _json(value) -> str:
    if value is None:
        return "{}"
    return value if isinstance(value, str) else json.dumps(value)
