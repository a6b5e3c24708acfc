"""The ops store: tradeops' own records (catalog, audit trail, health results, run summaries).

The names below resolve on first use, so a module that needs only `tradeops.store.canonical`
(the audit slice workers, tasks.audit.chunk_walk) starts without SQLAlchemy and the models."""

import importlib
from typing import Any

__all__ = [
    "AlertGroup", "AlertSent", "AuditEntry", "BackupArtifact", "BackupSet", "ChangeApproval", "ChangeRequest",
    "DrDrill", "Experiment", "ExperimentEvaluation", "FlowRunSummary", "HealthResult", "Incident", "IncidentEvent",
    "Lease", "LogArchive", "PerformanceBaseline", "RemediationAttempt", "SizeSample",
    "open_store", "resolve_store_url", "session_for",
]


_ENGINE = ("open_store", "resolve_store_url", "session_for")


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'tradeops.store' has no attribute {name!r}")
    module = importlib.import_module("tradeops.store.engine" if name in _ENGINE else "tradeops.store.models")
    value = getattr(module, name)
    globals()[name] = value
    return value
