"""Where alerts go, and from which severity on (runbook 001 "Alert Channels")."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

SEVERITIES = ("critical", "high", "medium", "low")


class AlertChannel(Block):
    _block_type_name = "Tradeops Alert Channel"
    _block_type_slug = "tradeops-alert-channel"
    _description = "An alert destination: the run log, a webhook or an Alertmanager v2 API."

    target: str
    kind: Literal["log", "webhook", "alertmanager"] = "log"
    url: SecretStr | None = Field(None, description="Webhook or Alertmanager URL (may hold a token).")
    min_severity: Literal["critical", "high", "medium", "low"] = "high"

    def wants(self, severity: str) -> bool:
        return SEVERITIES.index(severity) <= SEVERITIES.index(self.min_severity)
