"""Self-healing (runbook 001 "Health Monitoring & Remediation"): the matrix, the actions, the engine."""

from tasks.remediation.engine import (
    ACTIONS, PERMISSION, Escalation, RemediationContext, RemediationRecord, escalate, remediate,
)
from tasks.remediation.matrix import (
    ESCALATE_AFTER_FAILED_ATTEMPTS, ESCALATE_CRITICAL_AFTER, REMEDIATION_MATRIX, RemediationRule,
)

__all__ = [
    "ACTIONS", "ESCALATE_AFTER_FAILED_ATTEMPTS", "ESCALATE_CRITICAL_AFTER", "PERMISSION", "REMEDIATION_MATRIX",
    "Escalation", "RemediationContext", "RemediationRecord", "RemediationRule", "escalate", "remediate",
]
