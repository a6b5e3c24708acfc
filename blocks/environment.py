"""One tradeops environment: which blocks make it up, where the ops store is, health settings.

Flows take the environment's block name as their only required parameter, so a flow run's
parameters (shown in the UI) never carry a secret; the secrets stay in the blocks.
"""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks.alerts import AlertChannel
from blocks.applications import PythonApplication
from blocks.certificates import CertificateSet
from blocks.configs import ConfigFileSet
from blocks.database import DatabaseTarget
from blocks.git import GitRepositorySet
from blocks.logs import LogDirectory
from blocks.offsite import OffsiteStorage
from blocks.processes import PlatformProcess
from tradeops.store.engine import resolve_store_url


class TradeopsEnvironment(Block):
    _block_type_name = "Tradeops Environment"
    _block_type_slug = "tradeops-environment"
    _description = "A tradeops environment: its targets (by block name), ops store and settings."

    description: str = ""
    data_dir: str = Field(description="Folder for local outputs: reports, local backup sets, ops.db.")
    ops_store_url: SecretStr | None = Field(None, description="SQLAlchemy URL of the ops store.")
    offsite_block: str | None = None
    database_blocks: list[str] = Field(default_factory=list)
    git_blocks: list[str] = Field(default_factory=list)
    log_blocks: list[str] = Field(default_factory=list)
    certificate_blocks: list[str] = Field(default_factory=list)
    config_blocks: list[str] = Field(default_factory=list)
    alert_blocks: list[str] = Field(default_factory=list)
    process_blocks: list[str] = Field(default_factory=list)
    application_blocks: list[str] = Field(default_factory=list)
    health_disk_paths: list[str] = Field(default_factory=list)
    health_thresholds: dict[str, dict[str, float]] = Field(default_factory=dict)
    backup_retention_days: dict[str, int] = Field(default_factory=dict,
                                                  description="Overrides of the retention classes, in days.")
    backup_encryption_key_block: str | None = Field(
        None, description="Name of a Secret block holding the 256-bit backup key (hex or base64).")
    alert_repeat_minutes: float = Field(240, description="A condition still failing is re-notified this often.")
    remediation_enabled: bool = Field(True, description="The health check acts on what it finds (runbook 001).")
    remediation_dry_run: bool = Field(True, description="Remediation only says what it would do.")
    maintenance_thresholds: dict[str, float] = Field(
        default_factory=dict, description="Overrides of the maintenance report's thresholds.")
    maintenance_reindex_bloated_indexes: bool = Field(
        False, description="db-maintenance rebuilds indexes over the bloat threshold (REINDEX CONCURRENTLY).")

    experiments_database_block: str | None = Field(None, description="Database block holding the trades.")
    experiments_trades_query: str | None = Field(None, description="Trades of one experiment (:experiment).")
    experiments_discover_query: str | None = Field(None, description="Experiments the platform runs.")
    experiments_total_capital_usd: float | None = None
    experiments_settings: dict = Field(default_factory=dict, description="Overrides of the evaluation settings.")
    access_users: dict[str, str] = Field(default_factory=dict, description="User -> role (runbook 000 roles).")
    access_default_user: str | None = Field(
        None, description="The service user: who runs not started by `tradeops run` act as (schedules, workers, UI).")
    access_logins: dict[str, str] = Field(
        default_factory=dict, description="OS login (or service account) -> the tradeops user a CLI command acts as.")
    strategy_approval_required: bool = Field(False, description="Promotion needs another user's approval.")
    metrics_pushgateway_url: SecretStr | None = Field(
        None, description="Pushgateway URL (may hold basic-auth credentials); flows push metrics at each run's end.")

    def databases(self) -> list[DatabaseTarget]:
        return [DatabaseTarget.load(name) for name in self.database_blocks]

    def git_sets(self) -> list[GitRepositorySet]:
        return [GitRepositorySet.load(name) for name in self.git_blocks]

    def log_directories(self) -> list[LogDirectory]:
        return [LogDirectory.load(name) for name in self.log_blocks]

    def certificate_sets(self) -> list[CertificateSet]:
        return [CertificateSet.load(name) for name in self.certificate_blocks]

    def config_sets(self) -> list[ConfigFileSet]:
        return [ConfigFileSet.load(name) for name in self.config_blocks]

    def alert_channels(self) -> list[AlertChannel]:
        return [AlertChannel.load(name) for name in self.alert_blocks]

    def processes(self) -> list[PlatformProcess]:
        return [PlatformProcess.load(name) for name in self.process_blocks]

    def applications(self) -> list[PythonApplication]:
        return [PythonApplication.load(name) for name in self.application_blocks]

    def experiments_database(self) -> DatabaseTarget | None:
        return DatabaseTarget.load(self.experiments_database_block) if self.experiments_database_block else None

    def offsite(self) -> OffsiteStorage | None:
        return OffsiteStorage.load(self.offsite_block) if self.offsite_block else None

    def store_url(self) -> str:
        """The ops store URL this environment writes to (TRADEOPS_DATABASE_URL wins)."""
        configured = self.ops_store_url.get_secret_value() if self.ops_store_url else None
        return resolve_store_url(configured, self.data_dir)

    def output_dir(self, *parts: str) -> Path:
        path = Path(self.data_dir, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path
