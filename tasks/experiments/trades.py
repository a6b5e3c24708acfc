"""Where an experiment's trades come from: the platform database (a configured query) or a file.

The query names the experiment as `:experiment` and returns `trade_id, group, pnl, ts` (the
sandbox's is in its tradeops.toml); a file is CSV or Parquet with those columns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.databases import connect, is_sqlite
from tasks.experiments.data_gate import TRADE_COLUMNS, trades_frame


class TradesUnavailable(ValueError):
    """The trades cannot be read: the file, query or column at fault is named."""


def trades_from_database(url: str, query: str, experiment: str) -> pd.DataFrame:
    sql = query if is_sqlite(url) else query.replace(":experiment", "%(experiment)s")
    with connect(url) as conn:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, {"experiment": experiment})
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        except Exception as exc:  # noqa: BLE001 - a wrong query is a configuration problem: say which
            raise TradesUnavailable(f"the trades query failed for experiment {experiment!r}: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
        finally:
            cursor.close()
    try:
        return trades_frame(pd.DataFrame(rows, columns=columns))
    except ValueError as exc:
        raise TradesUnavailable(f"the trades query for {experiment!r}: {exc}") from None


def trades_from_file(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise TradesUnavailable(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={"group": "string"})
    except Exception as exc:  # noqa: BLE001 - unreadable input: name the file
        raise TradesUnavailable(f"{path}: cannot be read as {'Parquet' if path.suffix.lower() in ('.parquet', '.pq') else 'CSV'}: {exc}") from None
    try:
        return trades_frame(frame)
    except ValueError as exc:
        raise TradesUnavailable(f"{path}: {exc}") from None


__all__ = ["TRADE_COLUMNS", "TradesUnavailable", "trades_from_database", "trades_from_file"]
