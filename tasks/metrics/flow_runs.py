"""Each flow's last outcome, last failure and run counts, from the run summaries every flow
records at its end (`publish_summary`), so a failed run is an alert even when nobody reads it."""

from __future__ import annotations

import json
from typing import Any, Iterator

from prometheus_client.core import Metric
from sqlalchemy import func
from sqlmodel import select

from tasks.metrics.families import epoch, family
from tasks.metrics.names import FAILED_STATES, FLOW_STATES
from tradeops.store import FlowRunSummary, session_for


def flow_run_families(store_url: str, environment: str) -> Iterator[Metric]:
    mine = FlowRunSummary.environment == environment
    with session_for(store_url) as session:
        newest_ids = select(func.max(FlowRunSummary.id)).where(mine).group_by(FlowRunSummary.flow_name)
        last = session.exec(select(FlowRunSummary.flow_name, FlowRunSummary.state, FlowRunSummary.recorded_at)
                            .where(FlowRunSummary.id.in_(newest_ids))).all()
        failed = session.exec(select(FlowRunSummary.flow_name, func.max(FlowRunSummary.recorded_at))
                              .where(mine, FlowRunSummary.state.in_(FAILED_STATES)).group_by(FlowRunSummary.flow_name)).all()
        counts = session.exec(select(FlowRunSummary.flow_name, FlowRunSummary.state, func.count())
                              .where(mine).group_by(FlowRunSummary.flow_name, FlowRunSummary.state)).all()
    state, ended = family("tradeops_flow_run_last_state"), family("tradeops_flow_run_last_timestamp_seconds")
    for flow, final, recorded in sorted(last):
        for name in sorted({*FLOW_STATES, final}):
            state.add_metric([environment, flow, name], 1.0 if name == final else 0.0)
        ended.add_metric([environment, flow], epoch(recorded))
    last_failure = family("tradeops_flow_run_last_failure_timestamp_seconds")
    for flow, recorded in sorted(failed):
        last_failure.add_metric([environment, flow], epoch(recorded))
    runs = family("tradeops_flow_runs_total")
    for flow, final, n in sorted(counts):
        runs.add_metric([environment, flow, final], n)
    yield from (state, ended, last_failure, runs)


def latest_result(store_url: str, environment: str, flow_name: str) -> tuple[Any, dict] | None:
    """(recorded_at, result) of the flow's newest run summary in `environment`, or None."""
    with session_for(store_url) as session:
        row = session.exec(select(FlowRunSummary.recorded_at, FlowRunSummary.result_json)
                           .where(FlowRunSummary.environment == environment, FlowRunSummary.flow_name == flow_name)
                           .order_by(FlowRunSummary.id.desc()).limit(1)).first()
    if row is None:
        return None
    return row[0], _loads(row[1])


def _loads(text: str) -> dict:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
