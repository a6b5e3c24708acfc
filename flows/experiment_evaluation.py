"""experiment-evaluation: the daily look at every running strategy A/B experiment (runbooks 000
"A/B Testing Operations", 001 "Strategy A/B Testing"). Daily 01:00 UTC; on demand for one
experiment with `tradeops run experiment-evaluation --set experiment=ID`.

1. Register the experiments the platform runs that the ops store does not know yet (the
   configured discovery query).
2. For every running experiment:
   - read its trades (the configured query) and gate them with the Great Expectations suite
     (groups, unique ids, finite PnL, inside the experiment's window): failing data stops this
     experiment's evaluation and nothing is recorded as evaluated;
   - the statistics battery and the decision matrix (tasks/experiments/statistics, decision.py):
     the decision on the always-valid sequential Welch test (CUPED-adjusted when the trades carry
     their pre-period PnL), so looking every day keeps false positives at 5%; the experiment's
     planned end and trade budget make the decision terminal in time; the runbook's own tests,
     a Bayesian reading and the deflated Sharpe among the strategy's variants reported beside it;
   - capital against the 10% (experiment) and 5% (one arm) limits: a breach is a compliance finding;
   - plots (PnL distribution, cumulative PnL, the lift's interval day by day) next to the report
     and embedded in the summary artifact, so they open in the Prefect UI.
3. Record each evaluation in the ops store, alert on rollbacks and compliance findings, write the
   Prometheus metrics, and publish the report (with the variants of one strategy corrected
   together: Benjamini-Hochberg q-values).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from tasks.alerts import Alert, send_once_task
from tasks.databases import connect
from tasks.environment import LoadedEnvironment, load_environment
from tasks.experiments.data_gate import DataGateFailed, gate_trades
from tasks.experiments.decision import ExperimentPlan
from tasks.experiments.evaluation import daily_looks, evaluate_trades, settings_with
from tasks.experiments.lifecycle import (
    arm_capital_pct, find_experiment, list_experiments, parse_split, record_evaluation, register_platform_experiments,
    strategy_sharpes,
)
from tasks.experiments.metrics import ExperimentMetrics
from tasks.experiments.plots import plot_cumulative_pnl, plot_lift_over_time, plot_pnl_distribution
from tasks.experiments.report import publish_evaluation_report, statistics_markdown
from tasks.experiments.trades import TradesUnavailable, trades_from_database
from tradeops.store import Experiment
from tradeops.store.records import current_flow_run_id

ALERT_SEVERITY = {"rollback": "high", "compliance": "high"}


@flow(name="experiment-evaluation", **FAILURE_HOOKS)
def experiment_evaluation(environment: str = "default", experiment: str | None = None,
                          sequential: bool = True) -> State:
    env = load_environment(environment)
    block = env.block
    database = block.experiments_database()
    now = datetime.now(timezone.utc)
    registered = discover_platform_experiments(env, database)
    running = list_experiments(env.store_url, env.name, "running")  # all of them count for capital
    chosen = [find_experiment(env.store_url, env.name, experiment)] if experiment is not None else running
    settings = settings_with(block.experiments_settings, sequential)
    metrics = ExperimentMetrics()
    metrics.active.labels(env.name).set(len(running))
    folder = block.output_dir("reports", f"experiment-evaluation-{current_flow_run_id() or 'local'}")
    progress = create_progress_artifact(0.0, key="experiment-evaluation-progress", description="experiments evaluated")
    results = []
    for done, row in enumerate(chosen, start=1):
        results.append(evaluate_one(env, row, database, settings, now, folder, metrics, running))
        update_progress_artifact(progress, 100.0 * done / len(chosen))
    metrics_file = metrics.write(block.output_dir("metrics"))
    channels = block.alert_channels()
    sent = [send_once_task(env.store_url, env.name, alert, channels) for alert in experiment_alerts(results)]
    return publish_evaluation_report(env, results, registered, metrics_file, sent, folder)


def discover_platform_experiments(env: LoadedEnvironment, database) -> list[str]:
    """Step 1: experiments the platform runs, registered in the ops store as running."""
    query = env.block.experiments_discover_query
    if not query or database is None:
        return []
    with connect(database.url.get_secret_value()) as conn:
        cursor = conn.cursor()
        cursor.execute(query)
        columns = [d[0] for d in cursor.description]
        found = [dict(zip(columns, row)) for row in cursor.fetchall()]
        cursor.close()
    return register_platform_experiments(env.store_url, env.name, found)


def evaluate_one(env: LoadedEnvironment, row: Experiment, database, settings, now: datetime, folder: Path,
                 metrics: ExperimentMetrics, running: list[Experiment]) -> dict:
    """Step 2 for one experiment; failures are results that say why, never an exception."""
    logger = get_run_logger()
    result = {"id": row.id, "experiment": row.name, "strategy": row.strategy, "split": row.split,
              "capital_pct": row.capital_pct, "failure": None}
    started = time.monotonic()
    try:
        if database is None:
            raise TradesUnavailable("no [experiments] database is configured")
        trades = trades_from_database(database.url.get_secret_value(), env.block.experiments_trades_query, row.name)
        window = (row.started_at, max(now, row.ends_at or now)) if row.started_at else None
        trades = gate_trades(trades, window)
        plan = ExperimentPlan(row.started_at, row.ends_at, now)
        stats = evaluate_trades(trades, parse_split(row.split), settings, capital_pct=row.capital_pct,
                                strategy_capital_pct=arm_capital_pct(
                                    row.strategy, running if row.id in {r.id for r in running} else [*running, row]),
                                plan=plan, strategy_sharpes=strategy_sharpes(env.store_url, env.name, row.strategy, row.id),
                                strategy=row.strategy)
    except (TradesUnavailable, DataGateFailed, ValueError) as exc:
        reason = "data" if isinstance(exc, DataGateFailed) else "input"
        metrics.errors.labels(env.name, reason).inc()
        result["failure"] = f"not evaluated: {exc}"
        logger.error("%s: %s", row.name, result["failure"])
        return result
    result["analysis_seconds"] = round(time.monotonic() - started, 3)
    metrics.analysis_seconds.labels(env.name).observe(result["analysis_seconds"])
    metrics.decisions.labels(env.name, row.name, stats.decision).set(1)
    slug = "".join(c if c.isalnum() else "-" for c in row.name.lower())  # artifact keys: a-z, 0-9, dashes
    looks = daily_looks(trades, parse_split(row.split), settings, row.started_at or trades["ts"].min(), now, row.ends_at)
    plots = [plot_pnl_distribution(trades, row.name, folder / f"{slug}-pnl.png"),
             plot_cumulative_pnl(trades, row.name, folder / f"{slug}-cumulative.png")]
    if looks:
        plots.append(plot_lift_over_time([l["day"] for l in looks], [l["difference"] for l in looks],
                                         [l["ci_low"] for l in looks], [l["ci_high"] for l in looks], row.name,
                                         "decision interval" + (" (always-valid)" if settings.sequential else "")
                                         + (", CUPED-adjusted" if stats.row.get("cuped_used") else ""),
                                         folder / f"{slug}-lift.png"))
    statistics = stats.as_dict()
    record_evaluation(env.store_url, row.id, statistics, stats.decision, stats.rule,
                      list(stats.compliance_findings), str(folder))
    result.update(decision=stats.decision, rule=stats.rule, rule_name=stats.rule_name, terminal=stats.terminal,
                  statistics=statistics, looks=looks, findings=list(stats.compliance_findings),
                  plots=[str(p) for p in plots], markdown=statistics_markdown(stats, row.name))
    return result


def experiment_alerts(results: list[dict]) -> list[Alert]:
    alerts = []
    for r in results:
        target = f"experiment:{r['experiment']}"
        if r.get("decision") == "rollback":
            alerts.append(Alert(f"{target}:rollback", ALERT_SEVERITY["rollback"],
                                f"{r['experiment']}: the decision is to roll back", r["rule"], target,
                                "ExperimentRollback"))
        for finding in r.get("findings") or []:
            alerts.append(Alert(f"{target}:{finding}", ALERT_SEVERITY["compliance"], f"{r['experiment']}: {finding}",
                                "", target, "ExperimentCapitalLimit"))
    return alerts
