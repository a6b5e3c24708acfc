"""A/B experiment metrics named by runbook 000: experiments running now, and how the evaluation's
statistical analyses went (time per experiment, analyses that could not complete), read from the
experiment-evaluation run summaries.

Run summaries are append-only, so the analysis counts are running totals: each collection reads
only the summaries after the last one it saw.
"""

from __future__ import annotations

import json
from typing import Iterator

from prometheus_client.core import Metric
from sqlalchemy import func
from sqlmodel import select

from tasks.metrics.families import Tally, family
from tasks.metrics.names import STATISTICAL_ANALYSIS_BUCKETS
from tradeops.store import Experiment, FlowRunSummary, session_for

EVALUATION_FLOW = "experiment-evaluation"
NOT_EVALUATED = "not evaluated"  # how the flow words an analysis that could not complete


class EvaluationTotals:
    def __init__(self) -> None:
        self.last_id = 0
        self.analysis = Tally(STATISTICAL_ANALYSIS_BUCKETS)
        self.errors = 0

    def refresh(self, store_url: str, environment: str) -> None:
        with session_for(store_url) as session:
            rows = session.exec(select(FlowRunSummary.id, FlowRunSummary.result_json)
                                .where(FlowRunSummary.id > self.last_id, FlowRunSummary.environment == environment,
                                       FlowRunSummary.flow_name == EVALUATION_FLOW)
                                .order_by(FlowRunSummary.id)).all()
        for row_id, text in rows:
            for experiment in _experiments(text):
                if experiment.get("analysis_seconds") is not None:
                    self.analysis.observe(float(experiment["analysis_seconds"]))
                if str(experiment.get("failure") or "").startswith(NOT_EVALUATED):
                    self.errors += 1
            self.last_id = row_id

    def read(self, store_url: str, environment: str) -> Iterator[Metric]:
        self.refresh(store_url, environment)
        return self.families(environment)

    def families(self, environment: str) -> Iterator[Metric]:
        analysis, errors = family("statistical_analysis_duration_seconds"), family("experiment_statistical_errors_total")
        analysis.add_metric([environment], self.analysis.buckets(), self.analysis.total)
        errors.add_metric([environment], self.errors)
        yield from (analysis, errors)


def _experiments(text: str) -> list[dict]:
    try:
        found = json.loads(text or "{}").get("experiments") or []
    except (ValueError, AttributeError):
        return []
    return [e for e in found if isinstance(e, dict)]


def active_families(store_url: str, environment: str) -> Iterator[Metric]:
    with session_for(store_url) as session:
        running = session.exec(select(func.count()).select_from(Experiment)
                               .where(Experiment.environment == environment, Experiment.status == "running")).one()
    active = family("experiments_active_total")
    active.add_metric([environment], running)
    yield active
