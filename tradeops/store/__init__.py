"""The ops store: tradeops' own records (catalog, audit trail, health results, run summaries)."""

from tradeops.store.engine import open_store, resolve_store_url, session_for
from tradeops.store.models import (
    AlertGroup, AlertSent, AuditEntry, BackupArtifact, BackupSet, ChangeApproval, ChangeRequest, DrDrill, Experiment,
    ExperimentEvaluation, FlowRunSummary, HealthResult, Incident, IncidentEvent, Lease, LogArchive,
    PerformanceBaseline, RemediationAttempt, SizeSample,
)

__all__ = [
    "AlertGroup", "AlertSent", "AuditEntry", "BackupArtifact", "BackupSet", "ChangeApproval", "ChangeRequest",
    "DrDrill", "Experiment", "ExperimentEvaluation", "FlowRunSummary", "HealthResult", "Incident", "IncidentEvent",
    "Lease", "LogArchive", "PerformanceBaseline", "RemediationAttempt", "SizeSample",
    "open_store", "resolve_store_url", "session_for",
]
