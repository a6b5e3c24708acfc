"""Hourly returns per strategy from the platform's trades: the PnL of each strategy's trades summed
per hour (UTC). An hour with no trade of a strategy is missing for it, not zero: a pair's points
are the hours both traded."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from tasks.databases import connect, is_sqlite

TRADES_SQL = ("SELECT s.name, t.ts, t.pnl FROM trades t JOIN strategies s ON s.strategy_id = t.strategy_id "
              "WHERE t.ts >= {p} AND t.ts < {p}")
BUCKET = "1h"


def strategy_trades(url: str, since: datetime, until: datetime) -> pd.DataFrame:
    """Columns strategy, ts (UTC), pnl of every trade in [since, until)."""
    sqlite = is_sqlite(url)
    sql = TRADES_SQL.format(p="?" if sqlite else "%s")
    params = (since.isoformat(), until.isoformat()) if sqlite else (since, until)
    with connect(url) as conn:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        cursor.close()
    frame = pd.DataFrame(rows, columns=["strategy", "ts", "pnl"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="mixed")
    frame["pnl"] = frame["pnl"].astype(float)
    return frame


def hourly_returns(trades: pd.DataFrame) -> pd.DataFrame:
    """One column per strategy (sorted), one row per hour with trades; NaN where it did not trade."""
    if trades.empty:
        return pd.DataFrame()
    hours = trades["ts"].dt.floor(BUCKET)
    table = trades.assign(hour=hours).pivot_table(index="hour", columns="strategy", values="pnl", aggfunc="sum")
    return table.sort_index(axis=1)
