"""Loads the platform into a SQLite file, for runs without a PostgreSQL server.

SQLite's random() cannot be seeded, so bulk rows are generated in Python with
``random.Random`` (same model as the PostgreSQL generator) and inserted with
``executemany`` from generators. The file is built under a scratch name and moved
into place at the end, so a failed build never leaves a half-written platform.db.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from . import sqlite_sql
from .dataset import PNL_SD, PRE_PERIOD_CORRELATION, SYMBOLS, TAIL_MULT, TAIL_PROB, PlatformPlan, TradeBatch, order_queue_rows

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_sqlite_ts(value: datetime | None) -> str | None:
    """UTC timestamp as text, in the layout SQLAlchemy's SQLite DateTime uses."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


_REST = math.sqrt(1.0 - PRE_PERIOD_CORRELATION**2)


def _batch_rows(rng: random.Random, batch: TradeBatch) -> list[tuple]:
    rnd = rng.random
    start = (batch.start - _EPOCH).total_seconds()
    step = (batch.end - batch.start).total_seconds() / batch.n
    n_symbols = len(SYMBOLS)
    rows = []
    for g in range(1, batch.n + 1):
        u1, u2, u_mix, u_sym, u_side, u_qty, u_px, u_ts = (rnd() for _ in range(8))
        sd = PNL_SD * (TAIL_MULT if u_mix < TAIL_PROB else 1.0)
        radius = math.sqrt(-2.0 * math.log(1.0 - u1))
        pnl = batch.mean + sd * radius * math.cos(2.0 * math.pi * u2)
        pre_pnl = batch.pre_mean + sd * radius * (PRE_PERIOD_CORRELATION * math.cos(2.0 * math.pi * u2)
                                                  + _REST * math.sin(2.0 * math.pi * u2))
        ts = datetime.fromtimestamp(start + (g - 1 + u_ts) * step, timezone.utc)
        rows.append(
            (
                batch.trade_id_base + g, batch.experiment_id, batch.strategy_id, batch.grp,
                SYMBOLS[int(u_sym * n_symbols)], "buy" if u_side < 0.5 else "sell",
                (1 + int(u_qty * 50)) * 10, round(20 + u_px * 480, 2), pnl, to_sqlite_ts(ts), pre_pnl,
            )  # fmt: skip
        )
    if batch.recenter:
        shift = batch.mean - math.fsum(r[8] for r in rows) / len(rows)
        rows = [r[:8] + (r[8] + shift,) + r[9:] for r in rows]
    return rows


def _trade_rows(plan: PlatformPlan, seed: int) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:sqlite-trades")
    for batch in plan.batches:
        yield from _batch_rows(rng, batch)


def _position_rows(plan: PlatformPlan, seed: int, now: datetime) -> Iterator[tuple]:
    rng = random.Random(f"{seed}:sqlite-positions")
    rnd = rng.random
    n_strategies = len(plan.strategies)
    for g in range(1, plan.positions + 1):
        u_strat, u_sym = rnd(), rnd()
        qty = (int(rnd() * 200) - 100) * 10
        px = round(20 + rnd() * 480, 2)
        u_move, u_age, u_upd, u_desk = rnd(), rnd(), rnd(), rnd()
        yield (
            g, 1 + int(u_strat * n_strategies), SYMBOLS[int(u_sym * len(SYMBOLS))], qty, px,
            round(qty * px * (1 + (u_move - 0.5) * 0.1), 2), round(qty * px * (u_move - 0.5) * 0.1, 2),
            to_sqlite_ts(now - timedelta(days=u_age * 90)), to_sqlite_ts(now - timedelta(seconds=u_upd * 3600)),
            f"DESK-{1 + int(u_desk * 40):03d}",
        )  # fmt: skip


def build_sqlite(path: Path, plan: PlatformPlan, scale: str, seed: int, now: datetime) -> None:
    """Write the sandbox platform to the SQLite file ``path`` (replacing it)."""
    scratch = path.with_name(path.name + ".building")
    scratch.unlink(missing_ok=True)
    conn = sqlite3.connect(scratch)
    try:
        for pragma in sqlite_sql.PRAGMAS:
            conn.execute(pragma)
        with conn:
            for statement in sqlite_sql.CREATE_TABLES:
                conn.execute(statement)
            conn.executemany(
                sqlite_sql.INSERT_STRATEGIES,
                [(s.strategy_id, s.name, s.description, s.owner, s.status, to_sqlite_ts(s.created_at))
                 for s in plan.strategies],  # fmt: skip
            )
            conn.executemany(
                sqlite_sql.INSERT_EXPERIMENTS,
                [
                    (
                        e.experiment_id, e.experiment_name, e.strategy_id, e.status,
                        json.dumps(e.control_params, sort_keys=True), json.dumps(e.variant_params, sort_keys=True),
                        e.split, e.capital_allocation_pct, to_sqlite_ts(e.start_date), to_sqlite_ts(e.end_date),
                        to_sqlite_ts(e.created_at),
                    )  # fmt: skip
                    for e in plan.experiments
                ],
            )
            conn.executemany(sqlite_sql.INSERT_TRADES, _trade_rows(plan, seed))
            conn.executemany(
                sqlite_sql.INSERT_REGIME_HISTORY,
                ((to_sqlite_ts(ts), regime, conf) for ts, regime, conf in plan.regime_history),
            )
            conn.executemany(sqlite_sql.INSERT_POSITIONS, _position_rows(plan, seed, now))
            conn.executemany(sqlite_sql.INSERT_ORDER_QUEUE,
                             [(qid, ref, to_sqlite_ts(enq), to_sqlite_ts(done))
                              for qid, ref, enq, done in order_queue_rows(now)])
            conn.executemany(
                sqlite_sql.INSERT_STATISTICAL_RESULTS,
                [
                    (i + 1, r.experiment_id, r.p_value, r.statistical_significance, r.effect_size,
                     r.business_impact_score, to_sqlite_ts(r.computed_at))  # fmt: skip
                    for i, r in enumerate(plan.statistical_results)
                ],
            )
            for statement in sqlite_sql.CREATE_INDEXES:
                conn.execute(statement)
            conn.execute(sqlite_sql.CREATE_PERFORMANCE_SUMMARY)
            conn.execute(sqlite_sql.INSERT_MARKER, (to_sqlite_ts(now), seed, scale))
        conn.execute(sqlite_sql.ANALYZE)
        conn.commit()
    except BaseException:
        conn.close()
        scratch.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(scratch, path)
