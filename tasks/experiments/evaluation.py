"""One experiment's evaluation from its trades: the engine's battery and decision, and the daily
looks behind the "lift over time" plot (what the always-valid interval said at each day's end)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd

from tasks.experiments.data_gate import COVARIATE_COLUMN
from tasks.experiments.decision import ExperimentPlan
from tasks.experiments.statistics import ExperimentStatistics, evaluate_experiment
from tasks.experiments.statistics.settings import EvaluationSettings

MIN_TRADES_TO_PLOT = 2  # per group: fewer and a day's interval is undefined


def settings_with(overrides: dict | None = None, sequential: bool | None = None) -> EvaluationSettings:
    """The defaults with the environment's overrides (unknown names are a ValueError naming them)."""
    settings = EvaluationSettings()
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(settings.as_dict()))
    if unknown:
        raise ValueError(f"unknown evaluation setting(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(settings.as_dict()))}")
    if sequential is not None:
        overrides["sequential"] = sequential
    return replace(settings, **overrides)


def _groups(trades: pd.DataFrame):
    control = trades.loc[trades["group"] == "control"]
    variant = trades.loc[trades["group"] == "variant"]
    return control, variant


def evaluate_trades(trades: pd.DataFrame, split: tuple[int, int], settings: EvaluationSettings | None = None,
                    sequential: bool | None = None, capital_pct: float | None = None,
                    strategy_capital_pct: float | None = None, plan: ExperimentPlan | None = None,
                    strategy_sharpes=None, strategy: str = "") -> ExperimentStatistics:
    """The battery and decision on a frame of trades; a `pre_pnl` column (each trade's pre-period
    PnL) turns CUPED on."""
    settings = settings or settings_with(sequential=sequential)
    if sequential is not None and settings.sequential != sequential:
        settings = replace(settings, sequential=sequential)
    control, variant = _groups(trades)
    covariate = {}
    if COVARIATE_COLUMN in trades.columns:
        covariate = {"control_pre": control[COVARIATE_COLUMN].to_numpy(float),
                     "variant_pre": variant[COVARIATE_COLUMN].to_numpy(float)}
    return evaluate_experiment(control["pnl"].to_numpy(float), variant["pnl"].to_numpy(float), split, settings,
                               _naive_utc(control["ts"]), _naive_utc(variant["ts"]), capital_pct, strategy_capital_pct,
                               plan=plan, strategy_sharpes=strategy_sharpes, strategy=strategy, **covariate)


def _naive_utc(ts: pd.Series):
    """numpy datetime64 in UTC (numpy has no time zones)."""
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


def daily_looks(trades: pd.DataFrame, split: tuple[int, int], settings: EvaluationSettings, start: datetime,
                end: datetime, planned_end: datetime | None = None) -> list[dict]:
    """At the end of each day from `start` to `end`: the decision's estimate (CUPED-adjusted when
    the trades carry their pre-period PnL) and its interval on the trades up to then."""
    looks = []
    day = pd.Timestamp(start).tz_convert("UTC").normalize() + timedelta(days=1)
    last = pd.Timestamp(end).tz_convert("UTC")
    while True:
        cutoff = min(day, last)
        so_far = trades.loc[trades["ts"] < cutoff]
        control, variant = _groups(so_far)
        if len(control) >= MIN_TRADES_TO_PLOT and len(variant) >= MIN_TRADES_TO_PLOT:
            plan = ExperimentPlan(start, planned_end, cutoff.to_pydatetime())
            d = evaluate_trades(so_far, split, settings, plan=plan).as_dict()
            looks.append({"day": cutoff.isoformat(), "difference": d["estimate"]["difference"], "ci_low": d["ci"][0],
                          "ci_high": d["ci"][1], "p_value": d["p_value"], "decision": d["decision"]})
        if cutoff >= last:
            return looks
        day += timedelta(days=1)
