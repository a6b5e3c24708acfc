"""The ops store: tradeops' own records (catalog, audit trail, health results, run summaries)."""

from tradeops.store.engine import open_store, resolve_store_url, session_for
from tradeops.store.models import AuditEntry, BackupArtifact, BackupSet, DrDrill, FlowRunSummary, HealthResult

__all__ = [
    "AuditEntry", "BackupArtifact", "BackupSet", "DrDrill", "FlowRunSummary", "HealthResult",
    "open_store", "resolve_store_url", "session_for",
]
