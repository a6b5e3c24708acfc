"""What the lifecycle commands need of an environment, readable without Prefect.

`tradeops experiment create|start|list|show|conclude|rollback` need five things of the applied
environment: the ops store URL, the access table (users and their roles, OS logins and the users
they act as, the service user), the total capital, whether promotions need approval, and where
the strategy repositories are. The snapshot keeps the block's attribute names, so the identity
rules (tasks.access.cli_actor) read either and decide alike. Loading them as blocks costs
an import of Prefect and, on the embedded default, the start of an ephemeral API server: 7-13 s
for work that takes ~85 ms. So `tradeops apply` also writes those values to a small snapshot
beside Prefect's own files, `$PREFECT_HOME/tradeops-environments/<environment>.json` (mode
0600), and the commands read it.

A snapshot is used only while it is provably current: it records a token of the block documents
it was made from (their names and `updated` stamps), and the reader recomputes that token from
where the blocks live: Prefect's SQLite database for the ephemeral server (read-only, one query),
or the server's API (`POST /block_documents/filter`, no secrets) when PREFECT_API_URL is set. A
block edited in the UI, a re-apply elsewhere, another Prefect home or profile, a configuration
Prefect could read from the working folder (.env, prefect.toml), anything unexpected: the token
differs or cannot be computed, and the command takes the old path (load the blocks), which
refreshes the snapshot. The ops store URL is stored only when it carries no password; otherwise
the fast path needs TRADEOPS_DATABASE_URL (which wins anyway) and else loads the blocks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tradeops.files import atomic_output, git_repositories
from tradeops.store.engine import resolve_store_url

SNAPSHOT_VERSION = 2  # 2: access_logins (an older snapshot is not read: the blocks decide)
FOLDER = "tradeops-environments"
DISABLE_ENV = "TRADEOPS_NO_ENVIRONMENT_SNAPSHOT"  # set to 1: always load the blocks (the old path)
LOCAL_PREFECT_CONFIG = (".env", "prefect.toml")  # Prefect reads settings from these in the working folder


@dataclass(frozen=True)
class GitSetSnapshot:
    """A GitRepositorySet block's fields; `repositories()` lists them the way the block does."""

    target: str
    root: str | None = None
    paths: tuple[str, ...] = ()

    def repositories(self) -> list[Path]:
        return git_repositories(self.root, self.paths)


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """The lifecycle commands' view of an environment (attribute names as on the environment block)."""

    name: str
    data_dir: str
    ops_store_url: str | None  # None: the configured URL carries a password (or is unset and data_dir decides)
    ops_store_url_secret: bool
    access_users: dict[str, str] = field(default_factory=dict)
    access_logins: dict[str, str] = field(default_factory=dict)
    access_default_user: str | None = None
    experiments_total_capital_usd: float | None = None
    strategy_approval_required: bool = False
    git: tuple[GitSetSnapshot, ...] = ()
    blocks: tuple[str, ...] = ()  # the block documents this was made from
    token: str | None = None  # their names and update stamps, hashed
    backend: tuple[str, str] | None = None  # where the blocks live: ("ephemeral", db path) | ("server", API URL)
    config_sha256: str | None = None  # the applied configuration (with overrides), when made by `apply`

    def store_url(self) -> str:
        if self.ops_store_url_secret and not os.environ.get("TRADEOPS_DATABASE_URL"):
            raise LookupError("the ops store URL is a secret: it is not in the snapshot")
        return resolve_store_url(self.ops_store_url, self.data_dir)

    def git_sets(self) -> list[GitSetSnapshot]:
        return list(self.git)

    def usable(self) -> bool:
        """Everything a command needs is here (the store URL: unless it is a secret only the blocks hold)."""
        return not self.ops_store_url_secret or bool(os.environ.get("TRADEOPS_DATABASE_URL"))


def _has_password(url: str | None) -> bool:
    if not url:
        return False
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return True  # unparsable: treat as secret


def config_sha256(config: Any, base_dir: Path) -> str:
    """Identity of an applied configuration: the validated model (overrides and ${VAR}s applied)
    and the folder its relative paths are relative to."""
    return hashlib.sha256(f"{Path(base_dir).resolve()}\n{config.model_dump_json()}".encode()).hexdigest()


def snapshot_of(block: Any, git_sets: list[Any], environment: str, config_hash: str | None = None,
                keep_secret: bool = False) -> EnvironmentSnapshot:
    """From a loaded TradeopsEnvironment block and its GitRepositorySet blocks (duck-typed: this
    module never imports Prefect). `keep_secret`: an in-memory view that keeps a store URL with a
    password (never written)."""
    configured = block.ops_store_url.get_secret_value() if block.ops_store_url else None
    secret = _has_password(configured) and not keep_secret
    return EnvironmentSnapshot(
        name=environment, data_dir=block.data_dir, ops_store_url=None if secret else configured,
        ops_store_url_secret=secret, access_users=dict(block.access_users or {}),
        access_logins=dict(block.access_logins or {}), access_default_user=block.access_default_user,
        experiments_total_capital_usd=block.experiments_total_capital_usd,
        strategy_approval_required=bool(block.strategy_approval_required),
        git=tuple(GitSetSnapshot(g.target, g.root, tuple(g.paths)) for g in git_sets),
        blocks=(environment, *block.git_blocks), config_sha256=config_hash)


# -- where the blocks live ---------------------------------------------------------------------

def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _profile_settings(home: Path) -> dict[str, str]:
    path = home / "profiles.toml"
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {"unreadable": "1"}
    active = os.environ.get("PREFECT_PROFILE") or document.get("active") or "ephemeral"
    return {k: str(v) for k, v in (document.get("profiles", {}).get(active) or {}).items()}


def prefect_backend() -> tuple[str, str] | None:
    """Where Prefect keeps the blocks, as far as can be told without Prefect: the ephemeral
    server's SQLite file, or a server's API URL; None when unsure (then the old path is taken)."""
    if any(Path(name).exists() for name in LOCAL_PREFECT_CONFIG):
        return None
    try:
        if "[tool.prefect" in Path("pyproject.toml").read_text():
            return None
    except OSError:
        pass
    home = prefect_home()
    profile = _profile_settings(home)
    if "unreadable" in profile:
        return None

    def setting(name: str) -> str | None:
        return os.environ.get(name) or profile.get(name)

    api_url = setting("PREFECT_API_URL")
    if api_url:
        return "server", api_url.rstrip("/")
    if setting("PREFECT_API_DATABASE_CONNECTION_URL") or setting("PREFECT_SERVER_DATABASE_CONNECTION_URL"):
        return None  # the ephemeral server on a database of its own: not followed here
    return "ephemeral", str(home / "prefect.db")


def blocks_token(names: tuple[str, ...], backend: tuple[str, str] | None) -> str | None:
    """A hash of the block documents' names and update stamps, or None when they cannot be read."""
    if backend is None or not names:
        return None
    try:
        stamps = _ephemeral_stamps(names, backend[1]) if backend[0] == "ephemeral" else _server_stamps(names, backend[1])
    except Exception:  # noqa: BLE001 - any doubt means the old path, never a wrong answer
        return None
    if stamps is None or sorted(n for n, _ in stamps) != sorted(set(names)):
        return None  # a block is missing (or duplicated): let the old path say what is wrong
    return hashlib.sha256(json.dumps(sorted(stamps)).encode()).hexdigest()


def _ephemeral_stamps(names: tuple[str, ...], database: str) -> list[tuple[str, str]] | None:
    if not Path(database).is_file():
        return None
    marks = ", ".join("?" for _ in names)
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2)
    try:
        rows = connection.execute(f"SELECT name, updated FROM block_document WHERE name IN ({marks})",
                                  list(names)).fetchall()
    finally:
        connection.close()
    return [(str(name), str(updated)) for name, updated in rows]


def _server_stamps(names: tuple[str, ...], api_url: str) -> list[tuple[str, str]] | None:
    import httpx

    headers = {}
    if os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['PREFECT_API_KEY']}"
    elif os.environ.get("PREFECT_API_AUTH_STRING"):
        headers["Authorization"] = "Basic " + base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
    answer = httpx.post(f"{api_url}/block_documents/filter", headers=headers, timeout=3.0,
                        json={"block_documents": {"name": {"any_": list(names)}}, "include_secrets": False})
    answer.raise_for_status()
    return [(str(d["name"]), str(d["updated"])) for d in answer.json() if not d.get("is_anonymous")]


# -- reading and writing -----------------------------------------------------------------------

def record_applied(env_block: Any, git_blocks: list[Any], environment: str, config_hash: str) -> Path | None:
    """Called by `tradeops apply` once the saved blocks are those of the configuration `config_hash`
    names (`config_sha256`)."""
    return write_snapshot(snapshot_of(env_block, git_blocks, environment, config_hash))


def snapshot_path(environment: str) -> Path:
    return prefect_home() / FOLDER / f"{environment}.json"


def _prefect_settings_backend() -> tuple[str, str] | None:
    """Where Prefect itself (already imported by whoever saved the blocks) keeps them."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        return "server", str(settings.api.url).rstrip("/")
    url = settings.server.database.connection_url
    url = url.get_secret_value() if url is not None else ""
    prefix = "sqlite+aiosqlite:///"
    return ("ephemeral", url[len(prefix):]) if url.startswith(prefix) else None


def write_snapshot(snapshot: EnvironmentSnapshot) -> Path | None:
    """Record the snapshot with the current token of its blocks; nothing when that cannot be had,
    or when what the commands would read (env, profile) is not where Prefect saved the blocks
    (e.g. a settings context in tests)."""
    backend = prefect_backend()
    if backend is None or backend != _prefect_settings_backend():
        return None
    token = blocks_token(snapshot.blocks, backend)
    if token is None:
        return None
    data = asdict(snapshot)
    if _has_password(data["ops_store_url"]):  # never on disk, whatever the caller built
        data.update(ops_store_url=None, ops_store_url_secret=True)
    data.update(version=SNAPSHOT_VERSION, token=token, backend=list(backend))
    path = snapshot_path(snapshot.name)
    with atomic_output(path, mode=0o600) as handle:
        handle.write(json.dumps(data, sort_keys=True).encode())
    return path


def read_snapshot(environment: str, config_hash: str | None = None) -> EnvironmentSnapshot | None:
    """The environment's snapshot if it is current (its blocks unchanged since, and made from the
    configuration `config_hash` names when one is given), else None."""
    if os.environ.get(DISABLE_ENV):
        return None
    path = snapshot_path(environment)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.pop("version", None) != SNAPSHOT_VERSION:
        return None
    backend = prefect_backend()
    if backend is None or list(backend) != data.get("backend"):
        return None
    data["backend"] = tuple(data["backend"])
    data["git"] = tuple(GitSetSnapshot(g["target"], g.get("root"), tuple(g.get("paths") or ())) for g in data["git"])
    data["blocks"] = tuple(data["blocks"])
    try:
        snapshot = EnvironmentSnapshot(**data)
    except TypeError:
        return None
    if snapshot.name != environment or (config_hash is not None and snapshot.config_sha256 != config_hash):
        return None
    if blocks_token(snapshot.blocks, backend) != snapshot.token:
        return None
    return snapshot if snapshot.usable() else None
