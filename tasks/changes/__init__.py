"""Change requests (runbook 003 "Change Management", CR-YYYY-NNN): records, approval rules, audit."""

from tasks.changes.requests import (
    APPROVAL_PERMISSIONS, CREATE_PERMISSION, IMPLEMENT_PERMISSION, REQUIRED_APPROVALS, RISK_LEVELS, ChangeError,
    ChangeRequestView, ChangeTemplate, approve_change, create_change, find_change, list_changes, mark_implemented,
    raise_implemented_change, require_reader, view_of,
)

__all__ = [
    "APPROVAL_PERMISSIONS", "CREATE_PERMISSION", "IMPLEMENT_PERMISSION", "REQUIRED_APPROVALS", "RISK_LEVELS",
    "ChangeError", "ChangeRequestView", "ChangeTemplate", "approve_change", "create_change", "find_change",
    "list_changes", "mark_implemented", "raise_implemented_change", "require_reader", "view_of",
]
