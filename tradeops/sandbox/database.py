"""The platform database: which backend, which tables, and the entry points.

PostgreSQL when a ``database_url`` is given (the realistic target: partitions, a
materialized view, server-side bulk generation), otherwise a SQLite file inside the
sandbox directory so the sandbox works without a server.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .dataset import build_plan
from .errors import SandboxError
from .postgres import build_postgres, check_postgres_target
from .scales import Scale
from .sqlite_db import build_sqlite

# The platform's tables, as the runbooks name them (the marker table is separate).
PLATFORM_TABLES = ("strategies", "experiments", "trades", "regime_history", "positions", "statistical_results")
MARKER_TABLE = "tradeops_sandbox"
QUEUE_TABLE = "order_queue"  # the platform's order queue (enqueued_at, processed_at): health-checked
PERFORMANCE_VIEW = "experiment_performance_summary"
PLANTED_INDEXES = {"unused": "idx_positions_unused", "duplicate": "idx_trades_experiment"}

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_FILE_NAME = "platform.db"


def validate_database_url(database_url: str | None) -> None:
    """None (SQLite) or a postgresql:// / postgres:// URL; anything else is a SandboxError."""
    if database_url is None:
        return
    if not isinstance(database_url, str) or not database_url.lower().startswith(POSTGRES_SCHEMES):
        raise SandboxError(
            f"unsupported database URL {database_url!r}: expected one starting with "
            f"{' or '.join(POSTGRES_SCHEMES)} (or none, for a SQLite file in the sandbox directory)"
        )


def sqlite_url(path: Path) -> str:
    """SQLAlchemy-style URL of an absolute SQLite path: ``sqlite:////abs/path``."""
    return f"sqlite:///{path}"


def check_database_target(database_url: str | None) -> None:
    """Refuse, before anything is deleted, a PostgreSQL database that is not a sandbox."""
    if database_url is not None:
        check_postgres_target(database_url)


def build_database(
    database_url: str | None, directory: Path, scale: Scale, seed: int, now: datetime
) -> str:
    """Build the platform database; return its URL (as given, or the SQLite file's URL)."""
    if database_url is not None:
        plan = build_plan(scale, seed, now, scale.filler_trades_per_group, scale.positions)
        build_postgres(database_url, plan, scale.name, seed, now)
        return database_url
    plan = build_plan(scale, seed, now, scale.sqlite_filler_trades_per_group, scale.sqlite_positions)
    path = directory / SQLITE_FILE_NAME
    build_sqlite(path, plan, scale.name, seed, now)
    return sqlite_url(path)
