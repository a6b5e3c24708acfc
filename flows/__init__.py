"""One module per job. `FLOWS` maps each stable kebab-case flow name to its function."""

from __future__ import annotations

import importlib
from typing import Any

FLOWS: dict[str, str] = {
    "health-check": "flows.health_check:health_check",
    "daily-backup": "flows.daily_backup:daily_backup",
    "verify-backups": "flows.verify_backups:verify_backups",
    "weekly-backup": "flows.weekly_backup:weekly_backup",
    "restore": "flows.restore:restore",
    "dr-drill": "flows.dr_drill:dr_drill",
    "db-maintenance": "flows.db_maintenance:db_maintenance",
    "log-archival": "flows.log_archival:log_archival",
    "cert-check": "flows.cert_check:cert_check",
    "experiment-evaluation": "flows.experiment_evaluation:experiment_evaluation",
    "compliance-report": "flows.compliance_report:compliance_report",
    "audit-export": "flows.audit_export:audit_export",
    "wal-archive": "flows.wal_archive:wal_archive",
    "base-backup": "flows.base_backup:base_backup",
    "pitr-restore": "flows.pitr_restore:pitr_restore",
    "capacity-report": "flows.capacity_report:capacity_report",
    "ops-report": "flows.ops_report:ops_report",
}


def load_flow(name: str) -> Any:
    module, _, attribute = FLOWS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
