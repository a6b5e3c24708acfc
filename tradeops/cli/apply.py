"""`tradeops apply`: turn a validated `tradeops.toml` into Prefect blocks (upserted by name), saving
only what changed (tradeops/cli/config_changes.py).

Block names are `<environment>-<kind>-<name>`; the environment block itself is `<environment>`.
Relative paths in the file are taken relative to the file's folder.

Nothing is saved until the whole file has passed: its schema (tradeops.cli.config), then what only
this machine and the Prefect API can tell, all problems reported at once: the variables named by
`*_env` are set and hold valid URLs, the Secret and AwsCredentials blocks it names exist (the
backup key is 32 bytes), the data folder can be a folder, the ops store answers. `--check`
(`check_only`) runs every check and saves nothing.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psycopg2
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from blocks import (
    ALL_BLOCKS, AlertChannel, CertificateSet, ConfigFileSet, DatabaseTarget, GitRepositorySet,
    LogDirectory, OffsiteStorage, PlatformProcess, PythonApplication, TradeopsEnvironment,
)
from tasks.access import CONFIG_CHANGE, AccessDenied, Actor, cli_actor
from tasks.backup.encryption import KeyUnavailable, load_key
from tasks.databases import CONNECT_TIMEOUT_S, is_sqlite, libpq_dsn, sqlite_path
from tasks.metrics.push import PUSHGATEWAY_ENV
from tradeops.cli.config import TradeopsConfig, store_url, target_database_url
from tradeops.cli.config_changes import ConfigChange, changes_to_apply
from tradeops.config_values import http_url
from tradeops.cli.environment_snapshot import config_sha256, read_snapshot, record_applied
from tradeops.errors import ConfigError
from tradeops.store.engine import STORE_URL_ENV, open_store
from tradeops.store.records import append_audit


@dataclass(frozen=True)
class AppliedBlock:
    name: str
    block_type: str


def register_block_types() -> None:
    """What `prefect block register -m blocks` does, so the UI can show and edit them."""
    for block_class in ALL_BLOCKS:
        block_class.register_type_and_schema()


@dataclass
class Problems:
    """Every apply-time problem of one file, as `key: problem` lines, so one run lists them all."""

    lines: list[str] = field(default_factory=list)

    def check(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)`, or None with its ConfigError's message recorded."""
        try:
            return function(*args)
        except ConfigError as exc:
            self.lines.append(str(exc))
            return None

    def raise_if_any(self, source: Path) -> None:
        if self.lines:
            raise ConfigError("\n".join(f"{source}: {line}" for line in self.lines))


def _from_env(key: str, variable: str, meaning: Callable[[str], str]) -> str:
    """The value of `variable`, which must be set and mean what `meaning` checks."""
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{key}: environment variable {variable} is not set")
    try:
        return meaning(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: environment variable {variable}: {exc}") from None


def _secret_url(key: str, url: str | None, url_env: str | None,
                meaning: Callable[[str], str] = target_database_url) -> SecretStr:
    if url is not None:
        return SecretStr(url)
    return SecretStr(_from_env(f"{key}.url_env", url_env or "", meaning))


def _pushgateway_url(metrics) -> SecretStr | None:  # noqa: ANN001
    if os.environ.get(PUSHGATEWAY_ENV):  # wins over the file at push time: it must be a URL too
        _from_env(f"{PUSHGATEWAY_ENV} (overrides [metrics])", PUSHGATEWAY_ENV, http_url)
    if metrics.pushgateway_url is None and metrics.pushgateway_url_env is None:
        return None
    if metrics.pushgateway_url is not None:
        return SecretStr(metrics.pushgateway_url)
    return SecretStr(_from_env("metrics.pushgateway_url_env", metrics.pushgateway_url_env, http_url))


def _folder(key: str, folder: Path) -> None:
    """`folder` is a folder, or can be made one: its nearest existing ancestor is a writable folder."""
    if folder.exists():
        if not folder.is_dir():
            raise ConfigError(f"{key}: {folder} exists and is not a folder")
        return
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{key}: cannot create {folder}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: cannot create {folder}: no permission to write in {parent}")


def _encryption_key(key_block: str) -> None:
    try:
        load_key(key_block)
    except KeyUnavailable as exc:
        raise ConfigError(f"backups.encryption_key_block: {exc}") from None


def _aws_credentials(block_name: str) -> None:
    from prefect_aws import AwsCredentials

    try:
        AwsCredentials.load(block_name)
    except ValueError:
        raise ConfigError(f"offsite.aws_credentials_block: no AwsCredentials block named {block_name!r}; "
                          "create it (UI: Blocks, or AwsCredentials(...).save(name)) or leave the key out "
                          "to use the AWS_* environment variables") from None


def _store_answers(key: str, url: str) -> None:
    """The ops store can be opened: PostgreSQL accepts a connection; a SQLite file that exists is
    a SQLite database, one that does not can be created. Nothing is created here (`--check` too)."""
    if is_sqlite(url):
        database = Path(sqlite_path(url)).expanduser().resolve()
        if not database.exists():
            _folder(key, database.parent)
            return
        try:
            with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
                conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.Error as exc:
            raise ConfigError(f"{key}: {database} is not a SQLite database tradeops can open: {exc}") from None
        return
    try:
        psycopg2.connect(libpq_dsn(url), connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg2.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{key}: the ops store does not answer: {reason}") from None


def build_blocks(config: TradeopsConfig, base_dir: Path, problems: Problems | None = None) -> dict[str, object]:
    """Every block the configuration declares, by block document name (nothing saved, nothing
    created); what cannot be built is recorded in `problems` (else raised)."""
    own_problems = problems is None
    problems = problems or Problems()
    env = config.environment.name

    def path(p: str) -> str:
        try:
            given = Path(p).expanduser()
        except RuntimeError:  # ~user of an unknown user: taken literally, as a shell does
            given = Path(p)
        return str((base_dir / given).resolve())

    data_dir = path(config.environment.data_dir or "var")
    problems.check(_folder, "environment.data_dir", Path(data_dir))
    blocks: dict[str, object] = {}
    for i, db in enumerate(config.databases):
        blocks[f"{env}-db-{db.name}"] = DatabaseTarget(
            target=db.name, url=problems.check(_secret_url, f"databases[{i}]", db.url, db.url_env) or SecretStr(""),
            freshness_table=db.freshness_table, freshness_column=db.freshness_column, queue_table=db.queue_table,
            probe_query=db.probe_query, dump_jobs=db.dump_jobs, critical_work_probe=db.critical_work_probe,
            maintenance_blackout=db.maintenance_blackout, wal_archive=db.wal_archive,
            wal_spool=path(db.wal_spool) if db.wal_spool else None,
        )
    for repo_set in config.git:
        blocks[f"{env}-git-{repo_set.name}"] = GitRepositorySet(
            target=repo_set.name, root=path(repo_set.root) if repo_set.root else None,
            paths=[path(p) for p in repo_set.paths],
        )
    for i, logs in enumerate(config.logs):
        if logs.archive_dir:
            problems.check(_folder, f"logs[{i}].archive_dir", Path(path(logs.archive_dir)))
        blocks[f"{env}-logs-{logs.name}"] = LogDirectory(
            target=logs.name, path=path(logs.path), pattern=logs.pattern, rotate_bytes=logs.rotate_bytes,
            local_retention_days=logs.local_retention_days, offsite_retention_days=logs.offsite_retention_days,
            archive_dir=path(logs.archive_dir) if logs.archive_dir else None, reopen_command=logs.reopen_command,
            writer_grace_seconds=logs.writer_grace_seconds,
        )
    for certs in config.certificates:
        blocks[f"{env}-certs-{certs.name}"] = CertificateSet(
            target=certs.name, files=[path(p) for p in certs.files],
            directory=path(certs.directory) if certs.directory else None, endpoints=certs.endpoints,
            hostnames=certs.hostnames, ca_file=path(certs.ca_file) if certs.ca_file else None,
            renew_command=certs.renew_command, renew_below_days=certs.renew_below_days,
            renew_timeout_seconds=certs.renew_timeout_seconds,
        )
    for files in config.configs:
        blocks[f"{env}-config-{files.name}"] = ConfigFileSet(target=files.name,
                                                             paths=[path(p) for p in files.paths])
    for i, alert in enumerate(config.alerts):
        url = (problems.check(_secret_url, f"alerts[{i}]", alert.url, alert.url_env, http_url)
               if alert.kind != "log" else None)
        blocks[f"{env}-alert-{alert.name}"] = AlertChannel(target=alert.name, kind=alert.kind, url=url,
                                                           min_severity=alert.min_severity)
    for proc in config.processes:
        blocks[f"{env}-process-{proc.name}"] = PlatformProcess(
            target=proc.name, pid_file=path(proc.pid_file), health_url=proc.health_url,
            request_log=path(proc.request_log) if proc.request_log else None, start_command=proc.start_command,
            start_timeout_seconds=proc.start_timeout_seconds,
            circuit_breaker_file=path(proc.circuit_breaker_file) if proc.circuit_breaker_file else None,
        )
    for application in config.applications:
        blocks[f"{env}-app-{application.name}"] = PythonApplication(
            target=application.name, path=path(application.path), requirements_file=application.requirements_file,
            base_branch=application.base_branch, test_command=application.test_command,
            test_requirements=application.test_requirements, wheelhouse=path(application.wheelhouse),
            index_versions_file=path(application.index_versions_file),
            advisories_file=path(application.advisories_file),
            allow_security_updates=application.allow_security_updates,
            test_timeout_seconds=application.test_timeout_seconds,
        )
    offsite_name = None
    if config.offsite:
        offsite_name = f"{env}-offsite"
        blocks[offsite_name] = OffsiteStorage(**config.offsite.model_dump())
        if config.offsite.aws_credentials_block:
            problems.check(_aws_credentials, config.offsite.aws_credentials_block)
    if config.backups.encryption_key_block:
        problems.check(_encryption_key, config.backups.encryption_key_block)

    def names(prefix: str) -> list[str]:
        return [name for name in blocks if name.startswith(f"{env}-{prefix}-")]

    configured_store = config.ops_store.url
    if configured_store and configured_store.startswith("sqlite:///") and not configured_store.startswith("sqlite:////"):
        configured_store = f"sqlite:///{path(configured_store.removeprefix('sqlite:///'))}"
    configured_store = configured_store or f"sqlite:///{data_dir}/ops.db"
    if os.environ.get(STORE_URL_ENV):  # wins over the file (blocks.TradeopsEnvironment.store_url)
        key = f"{STORE_URL_ENV} (overrides ops_store.url)"
        if problems.check(_from_env, key, STORE_URL_ENV, store_url):
            problems.check(_store_answers, key, os.environ[STORE_URL_ENV])
    else:
        problems.check(_store_answers, "ops_store.url", configured_store)
    blocks[env] = TradeopsEnvironment(
        description=config.environment.description, data_dir=data_dir,
        ops_store_url=SecretStr(configured_store),
        offsite_block=offsite_name, database_blocks=names("db"), git_blocks=names("git"),
        log_blocks=names("logs"), certificate_blocks=names("certs"), config_blocks=names("config"),
        alert_blocks=names("alert"), application_blocks=names("app"), process_blocks=names("process"),
        alert_repeat_minutes=config.health.alert_repeat_minutes,
        remediation_enabled=config.remediation.enabled, remediation_dry_run=config.remediation.dry_run,
        health_disk_paths=[path(p) for p in config.health.disk_paths] or [data_dir],
        health_thresholds=config.health.thresholds,
        backup_retention_days=config.backups.retention_days,
        backup_encryption_key_block=config.backups.encryption_key_block,
        maintenance_thresholds=config.maintenance.thresholds,
        maintenance_reindex_bloated_indexes=config.maintenance.reindex_bloated_indexes,
        experiments_database_block=f"{env}-db-{config.experiments.database}" if config.experiments.database else None,
        experiments_trades_query=config.experiments.trades_query,
        experiments_discover_query=config.experiments.discover_query,
        experiments_total_capital_usd=config.experiments.total_capital_usd,
        experiments_settings=config.experiments.settings, access_users=config.access.users,
        access_logins=config.access.logins, access_default_user=config.access.user,
        strategy_approval_required=config.strategies.approval_required,
        metrics_pushgateway_url=problems.check(_pushgateway_url, config.metrics),
    )
    if own_problems and problems.lines:
        raise ConfigError("\n".join(problems.lines))
    return blocks


@dataclass
class ConfigPlan:
    """Every block a configuration declares, and what saving them would change; nothing saved yet."""

    blocks: dict[str, object]
    change: ConfigChange
    config_sha256: str  # the configuration's identity (tradeops.cli.environment_snapshot.config_sha256)

    @property
    def environment(self) -> TradeopsEnvironment:
        return self.blocks[self.change.environment]


def plan_config(config: TradeopsConfig, path: Path) -> ConfigPlan:
    """Check everything (a problem anywhere raises ConfigError naming the file, key and problem)
    and compare with the saved blocks; nothing is written."""
    problems = Problems()
    blocks = build_blocks(config, path.resolve().parent, problems)
    problems.raise_if_any(path)
    return ConfigPlan(blocks, changes_to_apply(config.environment.name, blocks),
                      config_sha256(config, path.resolve().parent))


def save_config(plan: ConfigPlan, path: Path) -> list[AppliedBlock]:
    """Open the ops store (created and migrated, so the apply's audit record lands), then save the
    blocks that are new or differ (upsert by name); nothing when nothing changed. Either way the
    environment's snapshot (`record_snapshot`) then matches the blocks."""
    environment = plan.environment
    Path(environment.data_dir).mkdir(parents=True, exist_ok=True)
    store = environment.store_url()
    if is_sqlite(store):
        Path(sqlite_path(store)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        open_store(store)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(f"{path}: ops_store.url: cannot open the ops store: {reason}") from None
    if plan.change.unchanged:
        record_snapshot(plan)
        return []
    register_block_types()
    applied = []
    for name in plan.change.blocks:
        block = plan.blocks[name]
        block.save(name, overwrite=True)
        applied.append(AppliedBlock(name, block.get_block_type_name()))
    record_snapshot(plan)
    return applied


def record_snapshot(plan: ConfigPlan) -> None:
    """What the lifecycle commands read without loading blocks (tradeops/cli/environment_snapshot.py),
    once the plan's blocks are the saved ones: after a save, and after a no-op apply unless a
    current snapshot of this configuration is there already (so an unchanged apply writes nothing)."""
    environment = plan.change.environment
    if plan.change.unchanged and read_snapshot(environment, plan.config_sha256) is not None:
        return
    block = plan.environment
    record_applied(block, [plan.blocks[name] for name in block.git_blocks], environment, plan.config_sha256)


def authorize_change(plan: ConfigPlan, requested_user: str | None, source: str) -> Actor:
    """Who applies the change, checked before anything is written. The access table that decides
    is the one applied now (a file cannot vouch for itself); a new environment's is its own. Once
    an environment has `[access] users`, changing it needs `config.change` (runbook 000: the system
    administrator's); a refusal is audited with the changes it would have made, then raised."""
    change = plan.change
    applied = None if change.created else TradeopsEnvironment.load(change.environment)
    judge = applied or plan.environment
    actor = cli_actor(judge, requested_user, "config_apply", change.environment)
    if applied is None or not applied.access_users:
        return actor  # a new environment, or one without access control yet: its first [access] comes here
    try:
        actor.require(CONFIG_CHANGE)
    except AccessDenied as exc:
        denial = AccessDenied(f"{exc}: applying {source} would change {change.summary()}; nothing was written")
        append_audit(applied.store_url(), "config_apply", actor.user, success=False,
                     details={"denied": str(denial), "role": actor.role, "permission": CONFIG_CHANGE,
                              "environment": change.environment, "config": source, "changes": change.recorded()})
        raise denial from None
    return actor
