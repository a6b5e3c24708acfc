"""experiment-evaluation end to end on the PostgreSQL sandbox: the planted scenarios get the right
decisions, evaluations are recorded with the flow run id, plots, metrics and alerts exist; trades
that fail the data gate are not evaluated and nothing is recorded for them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import psycopg2
import pytest
from scipy import stats
from sqlmodel import select

from conftest import apply_as_own_environment
from tasks.experiments.formatting import p_value
from tradeops.store import AlertSent, ExperimentEvaluation, FlowRunSummary, session_for

pytestmark = pytest.mark.prefect  # runs flows on the session's Prefect server

PLANTED = {"clear-winner": "promote", "clear-loser": "rollback", "no-effect": "no-difference",
           "too-few-trades": "extend", "sample-ratio-mismatch": "extend"}


@pytest.fixture
def experiment_env(pg_sandbox, tmp_path):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "eval")
    return name, store, platform


def evaluate(environment: str, **params):
    from flows.experiment_evaluation import experiment_evaluation

    state = experiment_evaluation(environment=environment, return_state=True, **params)
    return state, state.result(raise_on_failure=False)


def platform_trades(url: str, experiment: str) -> tuple[np.ndarray, np.ndarray]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT t.grp, t.pnl FROM trades t JOIN experiments e USING (experiment_id) "
                    "WHERE e.experiment_name = %s", (experiment,))
        rows = cur.fetchall()
    conn.close()
    return (np.array([p for g, p in rows if g == "control"]), np.array([p for g, p in rows if g == "variant"]))


def test_planted_scenarios_get_the_right_decisions(experiment_env):
    name, store, platform = experiment_env
    state, result = evaluate(name)
    assert state.is_completed(), state.message
    by_scenario = {r["experiment"].split("-", 1)[1]: r for r in result["experiments"]}
    assert {s: r["decision"] for s, r in by_scenario.items()} == PLANTED
    assert "sample-ratio mismatch" in by_scenario["sample-ratio-mismatch"]["rule"]
    assert sorted(result["registered"]) == sorted(r["experiment"] for r in result["experiments"])

    # the fixed-horizon numbers equal an independent scipy computation on the same trades
    winner = by_scenario["clear-winner"]
    control, variant = platform_trades(platform.database_url, winner["experiment"])
    welch = stats.ttest_ind(variant, control, equal_var=False)
    assert winner["statistics"]["fixed_horizon"]["p_value"] == pytest.approx(welch.pvalue, rel=1e-9, abs=1e-300)
    assert winner["statistics"]["mean_difference"] == pytest.approx(variant.mean() - control.mean(), rel=1e-12)
    assert (winner["statistics"]["n_control"], winner["statistics"]["n_variant"]) == (len(control), len(variant))

    run_id = str(state.state_details.flow_run_id)
    with session_for(store) as session:
        evaluations = session.exec(select(ExperimentEvaluation)).all()
        summary = session.exec(select(FlowRunSummary).where(FlowRunSummary.flow_run_id == run_id)).one()
        alerts = session.exec(select(AlertSent).where(AlertSent.environment == name)).all()
    assert len(evaluations) == 5 and {e.flow_run_id for e in evaluations} == {run_id}
    assert {e.decision for e in evaluations} == set(PLANTED.values())
    assert all(json.loads(e.statistics_json)["decision"] == e.decision for e in evaluations)
    assert "| decision |" in summary.summary_markdown.replace("decision | rule", "decision |")
    assert [a.alert_key.endswith(":rollback") for a in alerts] == [True]  # the loser, through the log channel

    report = Path(result["report"])
    assert report.is_file() and "clear-winner: **promote**" in report.read_text()
    for r in result["experiments"]:
        assert len(r["plots"]) == 3 and all(Path(p).stat().st_size > 5000 for p in r["plots"])
        assert all(Path(p).parent == report.parent for p in r["plots"])
    metrics = (Path(result["report"]).parents[2] / "metrics" / "tradeops_experiments.prom").read_text()
    assert f'experiments_active_total{{environment="{name}"}} 5.0' in metrics
    assert f'statistical_analysis_duration_seconds_count{{environment="{name}"}} 5.0' in metrics

    # the daily looks behind the "lift over time" plot end with today's numbers
    last = winner["looks"][-1]
    assert last["difference"] == pytest.approx(winner["statistics"]["estimate"]["difference"], rel=1e-12)
    assert math.isclose(last["ci_low"], winner["statistics"]["ci"][0], rel_tol=1e-12)

    # CUPED on the sandbox's pre-period PnL (correlation 0.7): about half the variance gone
    for r in result["experiments"]:
        cuped = r["statistics"]["cuped"]
        if r["statistics"]["n_control"] >= 500:
            assert 0.35 < cuped["variance_reduction"] < 0.65, (r["experiment"], cuped)
    print(f"\nCUPED variance reduction on the sandbox: " + ", ".join(
        f"{r['experiment']} {r['statistics']['cuped']['variance_reduction']:.1%}" for r in result["experiments"]))

    # the report file links the PNGs beside it; the UI artifact embeds them; numbers are rounded
    text = report.read_text()
    assert "(clear-winner" not in text and f"]({Path(winner['plots'][0]).name})" in text
    artifact = _summary_artifact(run_id)
    assert artifact.count("](data:image/png;base64,") == 15 and "file://" not in artifact
    assert "| 1,500 | 1,500 |" in artifact and "1500.0" not in artifact
    srm = by_scenario["sample-ratio-mismatch"]
    assert f"| {p_value(srm['statistics']['srm_p_value'])} |" in artifact  # the p its decision rests on
    assert all(r["terminal"] is not None for r in result["experiments"])


def _summary_artifact(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            key=ArtifactFilterKey(any_=["experiment-evaluation-summary"])))
    return artifacts[0].data


def test_trades_failing_the_data_gate_are_not_evaluated(experiment_env):
    name, store, platform = experiment_env
    conn = psycopg2.connect(platform.database_url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT experiment_id, strategy_id, experiment_name FROM experiments "
                "WHERE experiment_name LIKE '%no-effect'")
    experiment_id, strategy_id, experiment = cur.fetchone()
    cur.execute("SELECT max(trade_id) + 1, max(ts) FROM trades")
    trade_id, ts = cur.fetchone()
    cur.execute("INSERT INTO trades (trade_id, experiment_id, strategy_id, grp, symbol, side, quantity, price, pnl, ts, "
                "pre_pnl) VALUES (%s, %s, %s, 'variant', 'AAPL', 'buy', 10, 100, 'NaN', %s, 0)",
                (trade_id, experiment_id, strategy_id, ts))
    try:
        state, result = evaluate(name, experiment=experiment)
    finally:
        cur.execute("DELETE FROM trades WHERE trade_id = %s AND experiment_id = %s", (trade_id, experiment_id))
        conn.close()
    assert state.is_failed()
    assert f"{experiment}: not evaluated: trades failed the data checks" in state.message
    assert "expect_column_values_to_not_be_null on pnl: 1 row(s) fail" in state.message  # NaN PnL
    with session_for(store) as session:
        assert session.exec(select(ExperimentEvaluation)).all() == []


def test_an_unknown_experiment_is_a_clear_error(experiment_env):
    name, _, _ = experiment_env
    state, _ = evaluate(name, experiment="no-such-experiment")
    assert state.is_failed() and "no experiment 'no-such-experiment'" in state.message
