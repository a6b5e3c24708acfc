"""Loads the platform into PostgreSQL: creates the database if needed, refuses to
touch one that is not a sandbox, and generates bulk rows server side.

The whole rebuild runs in one transaction, so a failed rebuild leaves the previous
sandbox as it was.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from psycopg2.extensions import parse_dsn
from psycopg2.extras import execute_values

from . import pg_sql
from .dataset import PRE_PERIOD_CORRELATION, SYMBOLS, PNL_SD, TAIL_MULT, TAIL_PROB, PlatformPlan, order_queue_rows
from .errors import SandboxError

MAINTENANCE_DATABASE = "postgres"


def _connect_params(database_url: str) -> dict:
    try:
        params = parse_dsn(database_url)
    except psycopg2.ProgrammingError as exc:
        raise SandboxError(f"invalid PostgreSQL database URL {_redact(database_url)!r}: {exc}") from None
    if not params.get("dbname"):
        raise SandboxError(
            f"PostgreSQL database URL {_redact(database_url)!r} names no database; "
            "expected postgresql://user@host:port/dbname"
        )
    return params


def _redact(database_url: str) -> str:
    """The URL without its password, for error messages."""
    scheme, sep, rest = database_url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return database_url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{hostpart}"


def _connect(params: dict, what: str):
    try:
        return psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SandboxError(f"cannot connect to PostgreSQL {what} at {where}: {message}") from None


def _database_exists(params: dict) -> bool:
    try:  # reachable directly: exists (and the maintenance database need not be accessible)
        psycopg2.connect(**params).close()
        return True
    except psycopg2.OperationalError:
        pass  # missing, or unreachable: the maintenance database tells which, with a clear error
    maintenance = dict(params, dbname=MAINTENANCE_DATABASE)
    conn = _connect(maintenance, f"maintenance database {MAINTENANCE_DATABASE!r}")
    try:
        with conn.cursor() as cur:
            cur.execute(pg_sql.FIND_DATABASE, (params["dbname"],))
            return cur.fetchone() is not None
    finally:
        conn.close()


def _create_database(params: dict) -> None:
    maintenance = dict(params, dbname=MAINTENANCE_DATABASE)
    conn = _connect(maintenance, f"maintenance database {MAINTENANCE_DATABASE!r}")
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(params["dbname"])))
    except pg_errors.DuplicateDatabase:
        pass  # created concurrently: fine, the safety check runs next
    except psycopg2.Error as exc:
        raise SandboxError(f"cannot create PostgreSQL database {params['dbname']!r}: {exc.pgerror or exc}") from None
    finally:
        conn.close()


def _check_is_sandbox(conn, dbname: str) -> None:
    """Raise unless the database is empty or already holds a sandbox (marker table)."""
    with conn.cursor() as cur:
        cur.execute(pg_sql.MARKER_EXISTS)
        if cur.fetchone()[0]:
            return
        cur.execute(pg_sql.LIST_USER_TABLES)
        tables = [row[0] for row in cur.fetchall()]
    conn.rollback()
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise SandboxError(
            f"PostgreSQL database {dbname!r} already has tables ({shown}) and is not a tradeops sandbox "
            "(no tradeops_sandbox marker table); refusing to overwrite it. Use an empty or new database name."
        )


def check_postgres_target(database_url: str) -> None:
    """Fail early (before anything on disk is touched) if the target is not ours to rebuild."""
    params = _connect_params(database_url)
    if not _database_exists(params):
        return
    conn = _connect(params, f"database {params['dbname']!r}")
    try:
        _check_is_sandbox(conn, params["dbname"])
    finally:
        conn.close()


def _month_starts(first: datetime, last: datetime) -> list[datetime]:
    """First instants (UTC) of every month from ``first``'s month to the month after ``last``."""
    first = first.astimezone(timezone.utc)
    last = last.astimezone(timezone.utc)
    year, month = first.year, first.month
    out = []
    while (year, month) <= (last.year, last.month):
        out.append(datetime(year, month, 1, tzinfo=timezone.utc))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    out.append(datetime(year, month, 1, tzinfo=timezone.utc))
    return out


def _pg_seed(seed: int) -> float:
    """Map any integer seed into setseed()'s [-1, 1] range, deterministically."""
    return ((seed % 1_000_003) / 1_000_003) * 2 - 1


def _create_schema(cur, plan: PlatformPlan, now: datetime) -> None:
    for statement in pg_sql.DROP_SANDBOX_OBJECTS:
        cur.execute(statement)
    cur.execute(pg_sql.CREATE_MARKER)
    cur.execute(pg_sql.CREATE_STRATEGIES)
    cur.execute(pg_sql.CREATE_EXPERIMENTS)
    cur.execute(pg_sql.CREATE_TRADES)
    bounds = _month_starts(plan.first_trade_at, now)
    for lower, upper in zip(bounds, bounds[1:]):
        cur.execute(
            sql.SQL(pg_sql.CREATE_TRADES_PARTITION).format(
                partition=sql.Identifier(f"trades_{lower:%Y_%m}"),
                lower=sql.Literal(lower.isoformat()),
                upper=sql.Literal(upper.isoformat()),
            )
        )
    cur.execute(pg_sql.CREATE_REGIME_HISTORY)
    cur.execute(pg_sql.CREATE_ORDER_QUEUE)
    cur.execute(pg_sql.CREATE_POSITIONS)
    cur.execute(pg_sql.CREATE_STATISTICAL_RESULTS)


def _load_rows(cur, plan: PlatformPlan, now: datetime) -> None:
    execute_values(
        cur,
        pg_sql.INSERT_STRATEGIES,
        [(s.strategy_id, s.name, s.description, s.owner, s.status, s.created_at) for s in plan.strategies],
    )
    execute_values(
        cur,
        pg_sql.INSERT_EXPERIMENTS,
        [
            (
                e.experiment_id, e.experiment_name, e.strategy_id, e.status,
                json.dumps(e.control_params, sort_keys=True), json.dumps(e.variant_params, sort_keys=True),
                e.split, e.capital_allocation_pct, e.start_date, e.end_date, e.created_at,
            )  # fmt: skip
            for e in plan.experiments
        ],
        template=pg_sql.EXPERIMENTS_TEMPLATE,
    )
    execute_values(cur, pg_sql.INSERT_REGIME_HISTORY, list(plan.regime_history), page_size=2000)
    execute_values(cur, pg_sql.INSERT_ORDER_QUEUE, order_queue_rows(now))
    execute_values(
        cur,
        pg_sql.INSERT_STATISTICAL_RESULTS,
        [
            (i + 1, r.experiment_id, r.p_value, r.statistical_significance, r.effect_size,
             r.business_impact_score, r.computed_at)  # fmt: skip
            for i, r in enumerate(plan.statistical_results)
        ],
    )
    # Bulk rows: generated by the server; the order of statements fixes the random() stream.
    cur.execute(
        pg_sql.INSERT_POSITIONS,
        {
            "n": plan.positions, "n_strategies": len(plan.strategies), "symbols": list(SYMBOLS),
            "n_symbols": len(SYMBOLS), "now": now, "max_age_days": 90,
        },  # fmt: skip
    )
    for batch in plan.batches:
        span = (batch.end - batch.start).total_seconds()
        cur.execute(
            pg_sql.INSERT_TRADE_BATCH,
            {
                "base": batch.trade_id_base, "experiment_id": batch.experiment_id,
                "strategy_id": batch.strategy_id, "grp": batch.grp, "symbols": list(SYMBOLS),
                "n_symbols": len(SYMBOLS), "mean": batch.mean, "sd": PNL_SD, "tail_prob": TAIL_PROB,
                "tail_mult": TAIL_MULT, "start": batch.start, "step_seconds": span / batch.n, "n": batch.n,
                "pre_mean": batch.pre_mean, "rho": PRE_PERIOD_CORRELATION,
                "rho_rest": (1 - PRE_PERIOD_CORRELATION**2) ** 0.5,
            },  # fmt: skip
        )
        if batch.recenter:
            cur.execute(
                pg_sql.RECENTER_TRADE_BATCH,
                {"mean": batch.mean, "experiment_id": batch.experiment_id, "grp": batch.grp},
            )


def build_postgres(database_url: str, plan: PlatformPlan, scale: str, seed: int, now: datetime) -> None:
    """Create (or rebuild) the sandbox platform in the PostgreSQL database of ``database_url``."""
    params = _connect_params(database_url)
    if not _database_exists(params):
        _create_database(params)
    conn = _connect(params, f"database {params['dbname']!r}")
    try:
        _check_is_sandbox(conn, params["dbname"])
        with conn.cursor() as cur:
            for statement in pg_sql.SESSION_SETTINGS:
                cur.execute(statement)
            cur.execute(pg_sql.SET_SEED, (_pg_seed(seed),))
            _create_schema(cur, plan, now)
            _load_rows(cur, plan, now)
            for statement in pg_sql.CREATE_INDEXES:
                cur.execute(statement)
            cur.execute(pg_sql.CREATE_PERFORMANCE_SUMMARY)
            cur.execute(pg_sql.CREATE_PERFORMANCE_SUMMARY_INDEX)
            cur.execute(pg_sql.INSERT_MARKER, (now, seed, scale))
            cur.execute(pg_sql.ANALYZE)
        conn.commit()
        with conn.cursor() as cur:
            for statement in pg_sql.WARM_UP_QUERIES:
                cur.execute(statement)
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise SandboxError(
            f"building the sandbox in PostgreSQL database {params['dbname']!r} failed: "
            f"{(exc.pgerror or str(exc)).strip()}"
        ) from exc
    finally:
        conn.close()
