"""Open the ops store at its newest schema: SQLite by default, PostgreSQL when configured.

An environment's store URL is `TRADEOPS_DATABASE_URL` when set, else the environment block's
`ops_store_url`, else `sqlite:///<data_dir>/ops.db`; code that already holds a URL passes it. Opening runs the Alembic migrations
up to head (once per process and URL), so an upgrade of tradeops upgrades the store in place.

A store already at the newest revision is opened without Alembic: one `SELECT version_num FROM
alembic_version` against the head read from the migration files (their `revision` and
`down_revision` lines). Importing Alembic costs a short CLI command (`tradeops experiment show`)
about a sixth of its second; any doubt (no table, another revision, several heads) runs the
upgrade as before.
"""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
STORE_URL_ENV = "TRADEOPS_DATABASE_URL"  # wins over every configured store URL
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def resolve_store_url(configured: str | None = None, data_dir: str | Path | None = None) -> str:
    """TRADEOPS_DATABASE_URL, else the configured URL, else SQLite in data_dir (or $TRADEOPS_HOME, ./var)."""
    url = os.environ.get(STORE_URL_ENV) or configured
    if url:
        return url.replace("postgres://", "postgresql://", 1)
    folder = Path(data_dir or os.environ.get("TRADEOPS_HOME", "var")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'ops.db'}"


def alembic_config(url: str) -> "Config":
    from alembic.config import Config  # only when migrating (see the module docstring)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3; we ship psycopg2."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def _make_engine(url: str) -> Engine:
    url = sqlalchemy_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the store's schema to `revision` (Alembic); records are kept."""
    from alembic import command

    engine = _make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)


def head_revision() -> str | None:
    """The newest migration's revision, read from the files; None unless there is exactly one head."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        revisions.update(_REVISION.findall(source))
        parents.update(_DOWN_REVISION.findall(source))
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            versions = [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
    except SQLAlchemyError:
        return False
    return versions == [head]


def store_unreachable(url: str) -> str | None:
    """None when the ops store opens (and is at the newest schema), else why not, in one line
    without credentials."""
    try:
        open_store(url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip()
        return (reason.splitlines()[0] if reason else type(exc).__name__)
    return None


def open_store(url: str | None = None) -> Engine:
    """An engine on the store at `url` (or the resolved default), migrated to the newest schema."""
    url = url or resolve_store_url()
    with _lock:
        if url not in _engines:
            engine = _make_engine(url)
            if not _at_head(engine):
                upgrade(url)
            _engines[url] = engine
        return _engines[url]


@contextmanager
def session_for(url: str | None = None) -> Iterator[Session]:
    with Session(open_store(url), expire_on_commit=False) as session:
        yield session
