"""The `tradeops.toml` schema: one environment declared in git, validated before anything runs.

Every error names the key at fault (`databases[0].url: ...`) so a broken file is fixed in one
read. Secrets never need to be in the file: any string may say `${ENV_VAR}`, and database URLs
may be given as `url_env = "VAR"` instead of `url`.

Values are checked for meaning, not only type: types are strict (no "3" for 3, no true for 1),
numbers are finite and within the bounds below (listed in the README by `numeric_settings`),
URLs parse for their scheme, time windows are real times. What needs the environment (variables
named by `*_env`, Secret blocks, the data folder, the ops store) is checked by `tradeops.cli.apply`.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from annotated_types import Interval
from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator,
)

from tradeops.config_values import (
    POSTGRES_SCHEMES, clock_window, database_url, host_port, http_url, interval_text, offsite_url, within,
)
from tradeops.errors import ConfigError

BLOCK_NAME = r"^[a-z0-9][a-z0-9-]*$"
ENV_VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Name = Annotated[str, Field(pattern=BLOCK_NAME, max_length=40)]
BlockName = Annotated[str, Field(pattern=BLOCK_NAME, max_length=100)]  # a block made outside tradeops
EnvVarName = Annotated[str, Field(pattern=ENV_VAR_NAME)]

# Bounds of the numeric settings (the README's table is checked against these).
RETENTION_DAYS = Interval(ge=1, le=36_500)  # up to 100 years; the longest default class is 7 years
RetentionDays = Annotated[int, RETENTION_DAYS]
GIB = 1024**3


def _argv(value: list[str]) -> list[str]:
    if value and not value[0].strip():
        raise ValueError("the first item must name the program to run")
    return value


Argv = Annotated[list[str], AfterValidator(_argv)]


class _Strict(BaseModel):
    # strict: a TOML string is not a number, a number is not a boolean; finite: no inf or nan
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class EnvironmentSection(_Strict):
    name: Name = "default"
    description: str = ""
    data_dir: str | None = None  # local outputs; default: ./var beside the configuration file


STORE_SCHEMES = ("sqlite", *POSTGRES_SCHEMES)
TARGET_SCHEMES = ("sqlite", *POSTGRES_SCHEMES)


def store_url(value: str) -> str:
    return database_url(value, STORE_SCHEMES, sqlalchemy=True)  # the ops store is opened by SQLAlchemy


def target_database_url(value: str) -> str:
    return database_url(value, TARGET_SCHEMES, allow_query=False)


class OpsStoreSection(_Strict):
    url: Annotated[str, AfterValidator(store_url)] | None = None


class OffsiteSection(_Strict):
    url: Annotated[str, AfterValidator(offsite_url)]
    endpoint_url: Annotated[str, AfterValidator(http_url)] | None = None
    region: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "us-east-1"
    aws_credentials_block: BlockName | None = None
    retries: Annotated[int, Interval(ge=0, le=20)] = 3
    retry_delay_seconds: Annotated[float, Interval(gt=0, le=600)] = 2.0

    @model_validator(mode="after")
    def _endpoint_only_for_s3(self) -> OffsiteSection:
        if self.endpoint_url and not self.url.startswith("s3://"):
            raise ValueError("endpoint_url applies only to an s3:// url")
        return self


def _clock_window(value: str) -> str:
    clock_window(value)
    return value


class DatabaseSection(_Strict):
    name: Name
    url: Annotated[str, AfterValidator(target_database_url)] | None = None
    url_env: EnvVarName | None = None
    freshness_table: str | None = None
    freshness_column: str = "ts"
    queue_table: str | None = None  # the platform queue (enqueued_at, processed_at): its depth is health-checked
    probe_query: Annotated[str, Field(min_length=1)] = "SELECT 1"
    dump_jobs: Annotated[int, Interval(ge=1, le=32)] | None = None
    critical_work_probe: str | None = None
    maintenance_blackout: list[Annotated[str, AfterValidator(_clock_window)]] = []
    # point-in-time recovery (opt-in: the cluster must run archive_mode = on with tradeops' archive_command)
    wal_archive: bool = False
    wal_spool: str | None = None  # the folder archive_command spools WAL into (`tradeops wal push --spool`)

    @field_validator("freshness_table", "freshness_column", "queue_table")
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
    rotate_bytes: Annotated[int, Interval(ge=1024, le=1024 * GIB)] = 10 * 1024 * 1024  # runbook 001: 10 MB per file
    local_retention_days: RetentionDays = 30  # runbook 001: 30 days locally
    offsite_retention_days: RetentionDays = 365  # runbook 001: 1 year in the archive
    archive_dir: str | None = None  # default <data_dir>/log-archive
    reopen_command: Argv = []  # argv run after a rotation, e.g. ["pkill", "-HUP", "-f", "trading-engine"]
    writer_grace_seconds: Annotated[float, Interval(ge=0, le=3600)] = 10.0

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
    renew_command: Argv = []  # argv; {cert}, {key}, {domain} filled in
    renew_below_days: Annotated[int, Interval(ge=1, le=365)] = 30  # runbook 001: renew 30 days before expiry
    renew_timeout_seconds: Annotated[float, Interval(gt=0, le=3600)] = 300

    @field_validator("endpoints")
    @classmethod
    def _host_port(cls, values: list[str]) -> list[str]:
        for value in values:
            host_port(value)
        return values


class ProcessSection(_Strict):
    """A platform process (blocks/processes.py): pid file, health URL, request log, supervisor command."""

    name: Name
    pid_file: str
    health_url: Annotated[str, AfterValidator(http_url)] | None = None
    request_log: str | None = None
    start_command: Argv = []  # the supervisor command, argv without a shell
    start_timeout_seconds: Annotated[float, Interval(gt=0, le=600)] = 15
    circuit_breaker_file: str | None = None


class RemediationSection(_Strict):
    """Runbook 001 "Remediation Matrix" (tasks/remediation/matrix.py): `enabled = false` turns it off
    (001 "Disable Auto-Remediation"); `dry_run` (the default) only reports what it would do."""

    enabled: bool = True
    dry_run: bool = True


class ConfigFilesSection(_Strict):
    name: Name
    paths: list[str]


class ApplicationSection(_Strict):
    """A Python application the dependency-update flow keeps current (blocks/applications.py)."""

    name: Name
    path: str
    requirements_file: str = "requirements.txt"
    base_branch: str = "main"
    test_command: Argv = ["{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    test_requirements: list[str] = ["pytest"]
    wheelhouse: str
    index_versions_file: str
    advisories_file: str
    allow_security_updates: bool = False  # runbook 001: patch updates only, unless a security fix needs more
    test_timeout_seconds: Annotated[float, Interval(gt=0, le=7200)] = 600


class AlertSection(_Strict):
    name: Name
    kind: Literal["log", "webhook", "alertmanager"]
    url: Annotated[str, AfterValidator(http_url)] | None = None
    url_env: EnvVarName | None = None
    min_severity: Literal["critical", "high", "medium", "low"] = "high"

    @model_validator(mode="after")
    def _url_for_http(self) -> AlertSection:
        if self.kind != "log" and not (self.url or self.url_env):
            raise ValueError(f"kind {self.kind!r} needs url or url_env")
        return self


class HealthSection(_Strict):
    disk_paths: list[str] = []
    # a condition still failing is notified again this often (Alertmanager's repeat_interval, 4 h)
    alert_repeat_minutes: Annotated[float, Interval(ge=1, le=7 * 24 * 60)] = 240
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
            default = HEALTH_THRESHOLDS[metric]
            for level, number in levels.items():
                if not within(default.bounds, number):
                    raise ValueError(f"{metric}.{level} = {number:g} is out of bounds: "
                                     f"{interval_text(default.bounds)} {default.unit}")
            warn, fail = levels.get("warn", default.warn), levels.get("fail", default.fail)
            if not default.warns_before_failing(warn, fail):
                side = "at or above" if default.direction == "low_is_bad" else "at or below"
                raise ValueError(f"{metric}: warn ({warn:g}) must be {side} fail ({fail:g}), or it can never warn")
        return value


class MaintenanceSection(_Strict):
    # overrides of MAINTENANCE_THRESHOLDS (tasks/maintenance/thresholds.py); whole numbers where the default is one
    thresholds: dict[str, int | float] = {}
    reindex_bloated_indexes: bool = False  # opt-in: REINDEX INDEX CONCURRENTLY over the bloat threshold

    @field_validator("thresholds", mode="before")
    @classmethod
    def _known_thresholds(cls, value: Any) -> Any:
        from tasks.maintenance.thresholds import MAINTENANCE_BOUNDS, MAINTENANCE_THRESHOLDS

        if not isinstance(value, dict):
            return value  # the type check says what it should be
        unknown = sorted(set(value) - set(MAINTENANCE_THRESHOLDS))
        if unknown:
            raise ValueError(f"unknown maintenance threshold(s) {', '.join(map(str, unknown))}; known: "
                             f"{', '.join(sorted(MAINTENANCE_THRESHOLDS))}")
        checked = {}
        for name, number in value.items():
            whole = isinstance(MAINTENANCE_THRESHOLDS[name], int)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise ValueError(f"{name}: expected a {'whole ' if whole else ''}number, not {number!r}")
            if whole and not float(number).is_integer():
                raise ValueError(f"{name}: expected a whole number, not {number!r}")
            if not within(MAINTENANCE_BOUNDS[name], number):
                raise ValueError(f"{name} = {number:g} is out of bounds: {interval_text(MAINTENANCE_BOUNDS[name])}")
            checked[name] = int(number) if whole else number
        return checked


class StrategiesSection(_Strict):
    approval_required: bool = False  # promoting a version needs another user's approval (change control)


class ExperimentsSection(_Strict):
    database: str | None = None  # the [[databases]] entry holding the trades
    trades_query: str | None = None  # names the experiment as :experiment; returns trade_id, group, pnl, ts
    discover_query: str | None = None  # experiments the platform runs: name, strategy, split, capital_pct, ...
    # converts --capital between USD and percent
    total_capital_usd: Annotated[float, Interval(gt=0, le=1e15)] | None = None
    settings: dict[str, Any] = {}  # overrides of EvaluationSettings (tasks/experiments/statistics/settings.py)

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        from tasks.experiments.evaluation import settings_with
        from tasks.experiments.statistics.settings import SETTING_BOUNDS, EvaluationSettings

        types = get_type_hints(EvaluationSettings)
        unknown = sorted(set(value) - set(types))
        if unknown:
            raise ValueError(f"unknown evaluation setting(s) {', '.join(unknown)}; known: {', '.join(sorted(types))}")
        for name, setting in value.items():
            try:
                TypeAdapter(types[name], config=_Strict.model_config).validate_python(setting)
            except ValidationError as exc:
                raise ValueError(f"{name}: {exc.errors()[0]['msg']}, not {setting!r}") from None
            bounds = SETTING_BOUNDS.get(name)
            if bounds is not None and setting is not None and not within(bounds, setting):
                raise ValueError(f"{name} = {setting!r} is out of bounds: {interval_text(bounds)}")
        settings_with(value)  # the rules between settings (a ValueError names them)
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
    retention_days: dict[str, RetentionDays] = {}
    encryption_key_block: BlockName | None = None  # a Prefect Secret block with the 256-bit key

    @field_validator("retention_days")
    @classmethod
    def _known_classes(cls, value: dict[str, int]) -> dict[str, int]:
        from tasks.backup.catalog import RETENTION_DAYS

        for name in value:
            if name not in RETENTION_DAYS:
                raise ValueError(f"unknown retention class {name!r}; known: {', '.join(sorted(RETENTION_DAYS))}")
        return value


class MetricsSection(_Strict):
    """Where flows push their metrics at the end of each run (tasks/metrics/push.py); the URL may
    hold basic-auth credentials, so it can come from an environment variable instead."""

    pushgateway_url: Annotated[str, AfterValidator(http_url)] | None = None
    pushgateway_url_env: EnvVarName | None = None

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
    processes: list[ProcessSection] = []
    remediation: RemediationSection = RemediationSection()
    applications: list[ApplicationSection] = []
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
        for section in ("databases", "git", "logs", "certificates", "configs", "alerts", "applications",
                        "processes"):
            seen: set[str] = set()
            for item in getattr(self, section):
                if item.name in seen:
                    raise ValueError(f"{section}: name {item.name!r} is used twice")
                seen.add(item.name)
        return self


def _interval_of(annotation: Any, metadata: list[Any]) -> tuple[Any, Interval | None]:
    """(the bare type, its bounds) of a field's annotation: through Optional and Annotated."""
    bounds = next((m for m in metadata if isinstance(m, Interval)), None)
    while True:
        if get_origin(annotation) is Annotated:
            base, *extra = get_args(annotation)
            bounds = bounds or next((m for m in extra if isinstance(m, Interval)), None)
            annotation = base
        elif get_origin(annotation) in (Union, UnionType) and type(None) in get_args(annotation):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation, bounds


def numeric_settings() -> list[tuple[str, str, str]]:
    """(key, default, bounds) of every numeric setting of tradeops.toml, in file order: the
    schema's fields, then the thresholds and evaluation settings overridable by name. The README's
    table lists exactly these (tests/test_config.py checks it)."""
    from tasks.experiments.statistics.settings import SETTING_BOUNDS, EvaluationSettings
    from tasks.health.thresholds import HEALTH_THRESHOLDS
    from tasks.maintenance.thresholds import MAINTENANCE_BOUNDS, MAINTENANCE_THRESHOLDS

    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation, bounds = _interval_of(field.annotation, field.metadata)
            key = f"{prefix}{name}"
            if get_origin(annotation) is list and isinstance(get_args(annotation)[0], type) \
                    and issubclass(get_args(annotation)[0], BaseModel):
                walk(get_args(annotation)[0], f"{key}[].")
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{key}.")
            elif get_origin(annotation) is dict:
                value, value_bounds = _interval_of(get_args(annotation)[1], [])
                if value_bounds is not None:
                    rows.append((f"{key}.<class>", "per class", interval_text(value_bounds)))
            elif bounds is not None:
                rows.append((key, _shown(field.default), interval_text(bounds)))

    walk(TradeopsConfig, "")
    for metric, threshold in HEALTH_THRESHOLDS.items():
        rows.append((f"health.thresholds.{metric}.warn / .fail", f"{threshold.warn:g} / {threshold.fail:g}",
                     f"{interval_text(threshold.bounds)} {threshold.unit}"))
    for name, default in MAINTENANCE_THRESHOLDS.items():
        whole = ", whole" if isinstance(default, int) else ""
        rows.append((f"maintenance.thresholds.{name}", _shown(default), interval_text(MAINTENANCE_BOUNDS[name]) + whole))
    types = get_type_hints(EvaluationSettings)
    for name, bounds in SETTING_BOUNDS.items():
        whole = ", whole" if types[name] is int else ""
        rows.append((f"experiments.settings.{name}", _shown(getattr(EvaluationSettings(), name)),
                     interval_text(bounds) + whole))
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


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


# pydantic's wording for a wrong container type, in TOML's words
_TOML_TYPES = {"model_type": "should be a table ([section] or { ... })", "dict_type": "should be a table ({ ... })",
               "list_type": "should be an array ([...])"}


def describe_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem, each naming the dotted key, e.g. `offsite.url: ...`."""
    lines = []
    for item in error.errors(include_url=False):
        key = _location(item["loc"])
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] in _TOML_TYPES:
            message = _TOML_TYPES[item["type"]]
        else:
            message = item["msg"].removeprefix("Value error, ")
        line = f"{source}: {key}: {message}"
        if line not in lines:
            lines.append(line)
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
    """The TOML document of `path`: UTF-8 text (TOML's only encoding) that parses."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column}; "
                          "TOML files are UTF-8: save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None


def _reject_nul(value: Any, key: str, source: str) -> None:
    """No string may hold a NUL character (TOML allows \\u0000): no path, URL or name can."""
    if isinstance(value, dict):
        for name, item in value.items():
            _reject_nul(item, f"{key}.{name}" if key else name, source)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{key}[{i}]", source)
    elif isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{source}: {key}: contains a NUL character (\\u0000)")


def validate_document(document: dict[str, Any], source: str) -> TradeopsConfig:
    if not document:
        raise ConfigError(f"{source}: declares nothing (an empty file?): give at least [environment] name = \"...\"")
    try:
        expanded = expand_env_refs(document)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    _reject_nul(expanded, "", source)
    try:
        return TradeopsConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(source, exc)) from None


def load_config(path: Path, overrides: list[tuple[str, Any]] = ()) -> TradeopsConfig:
    document = load_document(path)
    for key, value in overrides:
        apply_override(document, key, value)
    return validate_document(document, str(path))
