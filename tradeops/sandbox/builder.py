"""``create_sandbox``: validate everything first, then build the pieces in order.

All checks that can refuse (scale, URL, directory ownership, a non-sandbox
PostgreSQL database) run before anything is deleted or written.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .applications import create_applications
from .certificates import create_certificates
from .configs import create_configs, mask_password
from .database import SQLITE_FILE_NAME, build_database, check_database_target, sqlite_url, validate_database_url
from .dataset import strategy_names
from .errors import SandboxError
from .git_repos import create_strategy_repos
from .logs import create_logs
from .models import SandboxPlatform
from .scales import get_scale
from .workspace import finish_build, resolve_directory, start_build


def _normalise_now(now: datetime | None) -> datetime:
    """The build's reference time, timezone-aware UTC (naive values are taken as UTC)."""
    if now is None:
        return datetime.now(timezone.utc)
    if not isinstance(now, datetime):
        raise SandboxError(f"now must be a datetime, got {type(now).__name__}")
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc)


def create_sandbox(
    directory,
    database_url: str | None = None,
    scale: str = "small",
    seed: int = 7,
    now: datetime | None = None,
) -> SandboxPlatform:
    """Generate a realistic local trading platform under ``directory``.

    Strategy git repositories, a platform database (PostgreSQL at ``database_url``, or
    SQLite in ``directory``), logs, configuration and TLS certificates. Deterministic
    for a given ``seed`` and ``now`` (except certificate keys). Rebuilds an existing
    sandbox; refuses (SandboxError) a non-empty directory or a non-empty database that
    is not a sandbox, an unknown ``scale`` or a non-PostgreSQL URL.
    """
    sc = get_scale(scale)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SandboxError(f"seed must be an integer, got {seed!r}")
    validate_database_url(database_url)
    now = _normalise_now(now)
    path = resolve_directory(directory)
    check_database_target(database_url)

    start_build(path, seed, sc.name, now)
    strategies = strategy_names(sc.strategies)
    url = database_url if database_url is not None else sqlite_url(path / SQLITE_FILE_NAME)

    create_strategy_repos(path / "repos", strategies, seed, now, sc.commits_per_repo)
    create_configs(path / "config", path, url)
    certificates = create_certificates(path / "certs", now)
    create_logs(path / "logs", sc, seed, now, strategies)
    create_applications(path / "apps", now)
    url = build_database(database_url, path, sc, seed, now)

    finish_build(
        path,
        {
            "seed": seed,
            "scale": sc.name,
            "created_at": now.isoformat(),
            "database_url": mask_password(url),
            "strategies": list(strategies),
            "certificates": certificates,
        },
    )
    return SandboxPlatform(
        directory=path,
        database_url=url,
        repos_dir=path / "repos",
        logs_dir=path / "logs",
        config_dir=path / "config",
        certs_dir=path / "certs",
        strategies=strategies,
        certificates=certificates,
        scale=sc.name,
        seed=seed,
    )
