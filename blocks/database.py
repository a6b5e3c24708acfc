"""A platform database tradeops operates on (PostgreSQL, or SQLite for the sandbox)."""

from __future__ import annotations

from urllib.parse import urlparse

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class DatabaseTarget(Block):
    """A database to check, back up and maintain. The URL is a secret: it may carry a password."""

    _block_type_name = "Tradeops Database Target"
    _block_type_slug = "tradeops-database-target"
    _description = "A PostgreSQL (or SQLite) database of the trading platform."

    target: str = Field(description="Short name used in reports, e.g. 'platform'.")
    url: SecretStr = Field(description="postgresql://user:password@host:port/db or sqlite:////path.db")
    freshness_table: str | None = Field(None, description="Table whose newest row tells data freshness.")
    freshness_column: str = Field("ts", description="Timestamp column of freshness_table.")
    queue_table: str | None = Field(None, description=(
        "The platform's queue table (columns enqueued_at, processed_at; NULL processed_at: waiting): the deep "
        "health check grades its depth and its oldest waiting item."))
    probe_query: str = Field("SELECT 1", description="A query that must answer for the database to be healthy.")
    critical_work_probe: str | None = Field(None, description=(
        "SQL that returns a row for each piece of critical work in progress; maintenance waits for none."))
    maintenance_blackout: list[str] = Field(default_factory=list, description=(
        'UTC windows with no maintenance, e.g. ["13:30-20:00"] (may cross midnight).'))
    dump_jobs: int | None = Field(None, ge=1, le=32, description=(
        "Parallel pg_dump workers; empty: decided per run from table sizes and cores; 1: always one "
        "custom-format file."))
    wal_archive: bool = Field(False, description=(
        "Point-in-time recovery: the cluster archives WAL with `tradeops wal push` (archive_mode = on)."))
    wal_spool: str | None = Field(None, description="The folder archive_command spools WAL into.")

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.get_secret_value().startswith("sqlite") else "postgresql"

    def display_url(self) -> str:
        """The URL with any password removed, safe for logs and reports."""
        url = self.url.get_secret_value()
        parsed = urlparse(url)
        if parsed.password is None:
            return url
        netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return parsed._replace(netloc=netloc).geturl()
