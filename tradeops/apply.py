"""`tradeops apply`: turn a validated `tradeops.toml` into Prefect blocks (upserted by name).

Block names are `<environment>-<kind>-<name>`; the environment block itself is `<environment>`.
Relative paths in the file are taken relative to the file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from blocks import (
    ALL_BLOCKS, AlertChannel, CertificateSet, ConfigFileSet, DatabaseTarget, GitRepositorySet,
    LogDirectory, OffsiteStorage, TradeopsEnvironment,
)
from tradeops.config import TradeopsConfig
from tradeops.environment_snapshot import record_applied
from tradeops.errors import ConfigError


@dataclass(frozen=True)
class AppliedBlock:
    name: str
    block_type: str


def register_block_types() -> None:
    """What `prefect block register -m blocks` does, so the UI can show and edit them."""
    for block_class in ALL_BLOCKS:
        block_class.register_type_and_schema()


def _secret_url(key: str, url: str | None, url_env: str | None) -> SecretStr:
    import os

    if url is not None:
        return SecretStr(url)
    value = os.environ.get(url_env or "")
    if not value:
        raise ConfigError(f"{key}.url_env: environment variable {url_env} is not set")
    return SecretStr(value)


def _pushgateway_url(metrics) -> SecretStr | None:  # noqa: ANN001
    if metrics.pushgateway_url is None and metrics.pushgateway_url_env is None:
        return None
    import os

    if metrics.pushgateway_url is not None:
        return SecretStr(metrics.pushgateway_url)
    value = os.environ.get(metrics.pushgateway_url_env)
    if not value:
        raise ConfigError(f"metrics.pushgateway_url_env: environment variable {metrics.pushgateway_url_env} is not set")
    return SecretStr(value)


def build_blocks(config: TradeopsConfig, base_dir: Path) -> dict[str, object]:
    """Every block the configuration declares, by block document name (nothing saved yet)."""
    env = config.environment.name

    def path(p: str) -> str:
        return str((base_dir / Path(p).expanduser()).resolve())

    data_dir = path(config.environment.data_dir or "var")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    blocks: dict[str, object] = {}
    for i, db in enumerate(config.databases):
        blocks[f"{env}-db-{db.name}"] = DatabaseTarget(
            target=db.name, url=_secret_url(f"databases[{i}]", db.url, db.url_env),
            freshness_table=db.freshness_table, freshness_column=db.freshness_column,
            probe_query=db.probe_query, dump_jobs=db.dump_jobs, critical_work_probe=db.critical_work_probe,
            maintenance_blackout=db.maintenance_blackout, wal_archive=db.wal_archive,
            wal_spool=path(db.wal_spool) if db.wal_spool else None,
        )
    for repo_set in config.git:
        blocks[f"{env}-git-{repo_set.name}"] = GitRepositorySet(
            target=repo_set.name, root=path(repo_set.root) if repo_set.root else None,
            paths=[path(p) for p in repo_set.paths],
        )
    for logs in config.logs:
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
        url = _secret_url(f"alerts[{i}]", alert.url, alert.url_env) if alert.kind != "log" else None
        blocks[f"{env}-alert-{alert.name}"] = AlertChannel(target=alert.name, kind=alert.kind, url=url,
                                                           min_severity=alert.min_severity)
    offsite_name = None
    if config.offsite:
        offsite_name = f"{env}-offsite"
        blocks[offsite_name] = OffsiteStorage(**config.offsite.model_dump())

    def names(prefix: str) -> list[str]:
        return [name for name in blocks if name.startswith(f"{env}-{prefix}-")]

    store_url = config.ops_store.url
    if store_url and store_url.startswith("sqlite:///") and not store_url.startswith("sqlite:////"):
        store_url = f"sqlite:///{path(store_url.removeprefix('sqlite:///'))}"
    blocks[env] = TradeopsEnvironment(
        description=config.environment.description, data_dir=data_dir,
        ops_store_url=SecretStr(store_url or f"sqlite:///{data_dir}/ops.db"),
        offsite_block=offsite_name, database_blocks=names("db"), git_blocks=names("git"),
        log_blocks=names("logs"), certificate_blocks=names("certs"), config_blocks=names("config"),
        alert_blocks=names("alert"),
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
        access_default_user=config.access.user, strategy_approval_required=config.strategies.approval_required,
        metrics_pushgateway_url=_pushgateway_url(config.metrics),
    )
    return blocks


def apply_config(config: TradeopsConfig, base_dir: Path) -> tuple[list[AppliedBlock], TradeopsEnvironment]:
    """Save every block (upsert by name); returns what was saved and the environment block."""
    blocks = build_blocks(config, base_dir)
    register_block_types()
    applied = []
    for name, block in blocks.items():
        block.save(name, overwrite=True)
        applied.append(AppliedBlock(name, block.get_block_type_name()))
    environment = blocks[config.environment.name]
    # what the lifecycle commands read without loading blocks (tradeops/environment_snapshot.py)
    record_applied(environment, [blocks[n] for n in environment.git_blocks], config.environment.name, config, base_dir)
    return applied, environment
