"""The `tradeops.toml` schema: one environment declared in git, validated before anything runs.

Every error names the key at fault (`databases[0].url: ...`) so a broken file is fixed in one
read. Secrets never need to be in the file: any string may say `${ENV_VAR}`, and database URLs
may be given as `url_env = "VAR"` instead of `url`.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tradeops.errors import ConfigError

BLOCK_NAME = r"^[a-z0-9][a-z0-9-]*$"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Name = Annotated[str, Field(pattern=BLOCK_NAME, max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvironmentSection(_Strict):
    name: Name = "default"
    description: str = ""
    data_dir: str | None = None  # local outputs; default: ./var beside the configuration file


class OpsStoreSection(_Strict):
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            _require_scheme(value, ("sqlite", "postgresql", "postgresql+psycopg2"))
        return value


class OffsiteSection(_Strict):
    url: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    aws_credentials_block: str | None = None
    retries: int = Field(3, ge=0, le=20)
    retry_delay_seconds: float = Field(2.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _file_or_s3(cls, value: str) -> str:
        parsed = _require_scheme(value, ("file", "s3"))
        if parsed.scheme == "s3" and not parsed.netloc:
            raise ValueError(f"{value!r} has no bucket: use s3://bucket/prefix")
        if parsed.scheme == "file" and not parsed.path.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute file:///path")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None:
            parsed = _require_scheme(value, ("http", "https"))
            if not parsed.netloc:
                raise ValueError(f"{value!r} has no host")
        return value

    @model_validator(mode="after")
    def _endpoint_only_for_s3(self) -> OffsiteSection:
        if self.endpoint_url and not self.url.startswith("s3://"):
            raise ValueError("endpoint_url applies only to an s3:// url")
        return self


class DatabaseSection(_Strict):
    name: Name
    url: str | None = None
    url_env: str | None = None
    freshness_table: str | None = None
    freshness_column: str = "ts"
    probe_query: str = "SELECT 1"
    dump_jobs: int | None = Field(None, ge=1, le=32)
    critical_work_probe: str | None = None
    maintenance_blackout: list[Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]] = []
    # point-in-time recovery (opt-in: the cluster must run archive_mode = on with tradeops' archive_command)
    wal_archive: bool = False
    wal_spool: str | None = None  # the folder archive_command spools WAL into (`tradeops wal push --spool`)

    @field_validator("url")
    @classmethod
    def _db_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            _require_scheme(value, ("postgresql", "postgres", "sqlite"))
        return value

    @field_validator("freshness_table", "freshness_column")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", value):
            raise ValueError(f"{value!r} is not a plain SQL identifier")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> DatabaseSection:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url or url_env")
        return self

    @model_validator(mode="after")
    def _wal_archive_needs_spool(self) -> DatabaseSection:
        if self.wal_archive and not self.wal_spool:
            raise ValueError("wal_archive = true needs wal_spool, the folder archive_command writes to")
        if self.wal_archive and self.url is not None and self.url.startswith("sqlite"):
            raise ValueError("wal_archive applies to PostgreSQL databases only")
        return self


class GitSection(_Strict):
    name: Name
    root: str | None = None
    paths: list[str] = []

    @model_validator(mode="after")
    def _root_or_paths(self) -> GitSection:
        if not self.root and not self.paths:
            raise ValueError("give root (every repository below it) or paths")
        return self


class LogsSection(_Strict):
    name: Name
    path: str
    pattern: str = "*.log"
    rotate_bytes: int = Field(10 * 1024 * 1024, gt=0)  # runbook 001: 10 MB per file
    local_retention_days: int = Field(30, ge=1)  # runbook 001: 30 days locally
    offsite_retention_days: int = Field(365, ge=1)  # runbook 001: 1 year in the archive
    archive_dir: str | None = None  # default <data_dir>/log-archive
    reopen_command: list[str] = []  # argv run after a rotation, e.g. ["pkill", "-HUP", "-f", "trading-engine"]
    writer_grace_seconds: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _offsite_outlives_local(self) -> LogsSection:
        if self.offsite_retention_days < self.local_retention_days:
            raise ValueError(f"offsite_retention_days ({self.offsite_retention_days}) is shorter than "
                             f"local_retention_days ({self.local_retention_days})")
        return self


class CertificatesSection(_Strict):
    name: Name
    files: list[str] = []
    directory: str | None = None
    endpoints: list[str] = []
    hostnames: dict[str, list[str]] = {}  # certificate file name -> host names it must serve
    ca_file: str | None = None  # trusted roots (PEM); default the system's
    renew_command: list[str] = []  # argv; {cert}, {key}, {domain} filled in
    renew_below_days: int = Field(30, ge=1)  # runbook 001: renew 30 days before expiry
    renew_timeout_seconds: float = Field(300, gt=0)

    @field_validator("endpoints")
    @classmethod
    def _host_port(cls, values: list[str]) -> list[str]:
        for value in values:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{value!r} is not host:port")
        return values


class ConfigFilesSection(_Strict):
    name: Name
    paths: list[str]


class AlertSection(_Strict):
    name: Name
    kind: Literal["log", "webhook", "alertmanager"]
    url: str | None = None
    url_env: str | None = None
    min_severity: Literal["critical", "high", "medium", "low"] = "high"

    @model_validator(mode="after")
    def _url_for_http(self) -> AlertSection:
        if self.kind != "log" and not (self.url or self.url_env):
            raise ValueError(f"kind {self.kind!r} needs url or url_env")
        return self


class HealthSection(_Strict):
    disk_paths: list[str] = []
    thresholds: dict[str, dict[str, float]] = {}

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        from tasks.health.thresholds import HEALTH_THRESHOLDS

        for metric, levels in value.items():
            if metric not in HEALTH_THRESHOLDS:
                raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(HEALTH_THRESHOLDS))}")
            unknown = set(levels) - {"warn", "fail"}
            if unknown:
                raise ValueError(f"{metric}: only warn and fail can be set, not {', '.join(sorted(unknown))}")
        return value


class MaintenanceSection(_Strict):
    thresholds: dict[str, float] = {}  # overrides of MAINTENANCE_THRESHOLDS (tasks/maintenance/thresholds.py)
    reindex_bloated_indexes: bool = False  # opt-in: REINDEX INDEX CONCURRENTLY over the bloat threshold

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        from tasks.maintenance.thresholds import MAINTENANCE_THRESHOLDS

        unknown = sorted(set(value) - set(MAINTENANCE_THRESHOLDS))
        if unknown:
            raise ValueError(f"unknown maintenance threshold(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(MAINTENANCE_THRESHOLDS))}")
        return value


class StrategiesSection(_Strict):
    approval_required: bool = False  # promoting a version needs another user's approval (change control)


class ExperimentsSection(_Strict):
    database: str | None = None  # the [[databases]] entry holding the trades
    trades_query: str | None = None  # names the experiment as :experiment; returns trade_id, group, pnl, ts
    discover_query: str | None = None  # experiments the platform runs: name, strategy, split, capital_pct, ...
    total_capital_usd: float | None = Field(None, gt=0)  # converts --capital between USD and percent
    settings: dict[str, Any] = {}  # overrides of EvaluationSettings (tasks/experiments/statistics/settings.py)

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        from tasks.experiments.evaluation import settings_with

        settings_with(value)  # a ValueError names the unknown or invalid setting
        return value

    @model_validator(mode="after")
    def _query_with_database(self) -> ExperimentsSection:
        if self.database and not self.trades_query:
            raise ValueError("database is set: give trades_query too")
        return self


class AccessSection(_Strict):
    users: dict[str, str] = {}  # user -> role (tasks/access.py ROLES, runbook 000 rbac.yml)
    user: str | None = None  # the service user: who runs not started by `tradeops run` act as
    logins: dict[str, str] = {}  # OS login (or service account) -> the user a CLI command acts as

    @model_validator(mode="after")
    def _default_user_has_a_role(self) -> AccessSection:
        if self.user is not None and self.user not in self.users:
            raise ValueError(f"user {self.user!r} is not in users")
        for login, user in self.logins.items():
            if user not in self.users:
                raise ValueError(f"logins: {login!r} maps to {user!r}, who is not in users")
        return self

    @field_validator("users")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        from tasks.access import ROLES

        for user, role in value.items():
            if role not in ROLES:
                raise ValueError(f"user {user!r}: unknown role {role!r}; roles: {', '.join(ROLES)}")
        return value


class BackupsSection(_Strict):
    retention_days: dict[str, int] = {}
    encryption_key_block: str | None = None  # a Prefect Secret block with the 256-bit key

    @field_validator("retention_days")
    @classmethod
    def _known_classes(cls, value: dict[str, int]) -> dict[str, int]:
        from tasks.backup.catalog import RETENTION_DAYS

        for name, days in value.items():
            if name not in RETENTION_DAYS:
                raise ValueError(f"unknown retention class {name!r}; known: {', '.join(sorted(RETENTION_DAYS))}")
            if days < 1:
                raise ValueError(f"{name}: retention must be at least 1 day, not {days}")
        return value


class MetricsSection(_Strict):
    """Where flows push their metrics at the end of each run (tasks/metrics/push.py); the URL may
    hold basic-auth credentials, so it can come from an environment variable instead."""

    pushgateway_url: str | None = None
    pushgateway_url_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "MetricsSection":
        if self.pushgateway_url is not None and self.pushgateway_url_env is not None:
            raise ValueError("give at most one of pushgateway_url or pushgateway_url_env")
        return self


class TradeopsConfig(_Strict):
    environment: EnvironmentSection = EnvironmentSection()
    ops_store: OpsStoreSection = OpsStoreSection()
    offsite: OffsiteSection | None = None
    databases: list[DatabaseSection] = []
    git: list[GitSection] = []
    logs: list[LogsSection] = []
    certificates: list[CertificatesSection] = []
    configs: list[ConfigFilesSection] = []
    alerts: list[AlertSection] = []
    health: HealthSection = HealthSection()
    backups: BackupsSection = BackupsSection()
    maintenance: MaintenanceSection = MaintenanceSection()
    experiments: ExperimentsSection = ExperimentsSection()
    access: AccessSection = AccessSection()
    strategies: StrategiesSection = StrategiesSection()
    metrics: MetricsSection = MetricsSection()

    @model_validator(mode="after")
    def _experiments_database_exists(self) -> TradeopsConfig:
        names = [db.name for db in self.databases]
        if self.experiments.database and self.experiments.database not in names:
            raise ValueError(f"experiments.database: no [[databases]] entry named {self.experiments.database!r}; "
                             f"databases: {', '.join(names) or 'none'}")
        return self

    @model_validator(mode="after")
    def _wal_archive_needs_offsite(self) -> TradeopsConfig:
        archiving = [db.name for db in self.databases if db.wal_archive]
        if archiving and self.offsite is None:
            raise ValueError(f"databases {', '.join(archiving)}: wal_archive = true needs [offsite], where WAL and "
                             "base backups go")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> TradeopsConfig:
        for section in ("databases", "git", "logs", "certificates", "configs", "alerts"):
            seen: set[str] = set()
            for item in getattr(self, section):
                if item.name in seen:
                    raise ValueError(f"{section}: name {item.name!r} is used twice")
                seen.add(item.name)
        return self


def _require_scheme(value: str, schemes: tuple[str, ...]):
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        raise ValueError(f"{value!r} is not a valid URL here: the scheme must be one of {', '.join(schemes)}")
    return parsed


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after", "function-before"} or str(part).startswith("function-"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def describe_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem, each naming the dotted key, e.g. `offsite.url: ...`."""
    lines = []
    for item in error.errors():
        key = _location(item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: {key}: unknown key")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {message}")
    return "\n".join(lines)


def expand_env_refs(value: Any, key: str = "") -> Any:
    """Replace `${VAR}` in every string; a missing variable is a config error naming the key."""
    if isinstance(value, dict):
        return {k: expand_env_refs(v, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env_refs(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        def _sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{key}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(_sub, value)
    return value


def parse_override(raw: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value), the value read as a TOML literal when it is one."""
    if "=" not in raw:
        raise ConfigError(f"--set {raw!r}: expected key=value")
    key, _, text = raw.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {raw!r}: empty key")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def apply_override(document: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `offsite.url` or `databases.platform.url` (list items addressed by name or index)."""
    parts = dotted.split(".")
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = _list_item(node, part, where)
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"--set {dotted}: {where} is not a table")
    if isinstance(node, list):
        raise ConfigError(f"--set {dotted}: name a field of one item")
    node[parts[-1]] = value


def _list_item(items: list[Any], part: str, where: str) -> Any:
    if part.isdigit() and int(part) < len(items):
        return items[int(part)]
    for item in items:
        if isinstance(item, dict) and item.get("name") == part:
            return item
    raise ConfigError(f"--set: no item {where!r} in the configuration")


def load_document(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def validate_document(document: dict[str, Any], source: str) -> TradeopsConfig:
    expanded = expand_env_refs(document)
    try:
        return TradeopsConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(source, exc)) from None


def load_config(path: Path, overrides: list[tuple[str, Any]] = ()) -> TradeopsConfig:
    document = load_document(path)
    for key, value in overrides:
        apply_override(document, key, value)
    return validate_document(document, str(path))
