"""The data gate before any statistic: a Great Expectations suite over the experiment's trades.

Group labels are `control` or `variant`, trade ids are unique, PnL is a finite number and every
trade falls inside the experiment's window. When the trades carry `pre_pnl` (each trade's
pre-period PnL, the CUPED covariate), it must be a finite number on every trade too. Trades failing any of these would make every number
after them wrong, so evaluation stops and names the failed expectations with examples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

TRADE_COLUMNS = ("trade_id", "group", "pnl", "ts")
COVARIATE_COLUMN = "pre_pnl"  # optional: the trade's pre-period PnL (CUPED)
GROUPS = ("control", "variant")
FINITE_BOUND = 1e300  # "between -1e300 and 1e300" is how the suite says finite: inf and nan fail it


@dataclass(frozen=True)
class GateFailure:
    expectation: str
    column: str
    unexpected_count: int
    examples: tuple

    def line(self) -> str:
        shown = ", ".join(repr(e) for e in self.examples[:5])
        return f"{self.expectation} on {self.column}: {self.unexpected_count} row(s) fail, e.g. {shown}"


class DataGateFailed(ValueError):
    def __init__(self, failures: list[GateFailure]):
        self.failures = failures
        super().__init__("trades failed the data checks: " + "; ".join(f.line() for f in failures))


def trades_frame(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """The trades as a frame with the four columns; a missing column is named."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    missing = [c for c in TRADE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"trades lack column(s) {', '.join(missing)}; expected {', '.join(TRADE_COLUMNS)}")
    columns = list(TRADE_COLUMNS) + ([COVARIATE_COLUMN] if COVARIATE_COLUMN in frame.columns else [])
    frame = frame.loc[:, columns].copy()
    frame["pnl"] = pd.to_numeric(frame["pnl"], errors="coerce")  # non-numeric -> NaN: the suite names it
    if COVARIATE_COLUMN in frame.columns:
        frame[COVARIATE_COLUMN] = pd.to_numeric(frame[COVARIATE_COLUMN], errors="coerce")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="ISO8601")
    return frame


def _suite(window: tuple[datetime, datetime] | None, covariate: bool = False):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name="experiment-trades")
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="group"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="group", value_set=list(GROUPS)))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="trade_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="trade_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="pnl"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="pnl", min_value=-FINITE_BOUND,
                                                            max_value=FINITE_BOUND))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="ts"))
    if covariate:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=COVARIATE_COLUMN))
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=COVARIATE_COLUMN, min_value=-FINITE_BOUND,
                                                                max_value=FINITE_BOUND))
    if window is not None:
        start, end = (pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else pd.Timestamp(t, tz="UTC")
                      for t in window)
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="ts", min_value=start, max_value=end))
    return suite


def check_trades(frame: pd.DataFrame, window: tuple[datetime, datetime] | None = None) -> list[GateFailure]:
    """Run the suite; the failed expectations (empty: the data may be evaluated)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # in memory, no temporary docs site folder per run, no progress bars in the run log
    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("trades").add_dataframe_asset("trades")
                        .add_batch_definition_whole_dataframe("all"))
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        _suite(window, COVARIATE_COLUMN in frame.columns))
    failures = []
    for item in result.results:
        if item.success:
            continue
        details = item.result or {}
        failures.append(GateFailure(item.expectation_config.type, item.expectation_config.kwargs.get("column", ""),
                                    int(details.get("unexpected_count") or 0),
                                    tuple(_plain(v) for v in details.get("partial_unexpected_list") or ())))
    return failures


def gate_trades(frame: pd.DataFrame, window: tuple[datetime, datetime] | None = None) -> pd.DataFrame:
    """The frame if it passes the suite; DataGateFailed listing every failed expectation if not."""
    failures = check_trades(frame, window)
    if failures:
        raise DataGateFailed(failures)
    return frame


def _plain(value):
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
