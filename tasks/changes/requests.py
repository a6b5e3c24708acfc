"""Change requests: runbook 003's template as a record, approvals by risk, every step audited.

Runbook 003 "Change Management" gives the template (CR-YYYY-NNN, priority, description,
implementation plan, risk assessment with rollback procedure) and three approval lines: technical,
business and security. It does not say which changes need which lines; tradeops asks for more of
them as the risk grows (`REQUIRED_APPROVALS`): low needs a technical approval, medium technical and
business, high and critical all three.

Who may approve comes from runbook 000's role table (tasks/access.py), through the permission that
already stands for that judgement (`APPROVAL_PERMISSIONS`): a technical approval needs `git.merge`
(senior traders, administrators: who may put code into production), a business approval
`experiment.start` (senior traders, administrators: who may commit capital), a security approval
`compliance.investigate` (compliance officers, administrators). An approver is never the submitter,
and one user gives at most one of a request's approvals (separation of duties). When the last
required approval arrives the request is `approved`; `mark_implemented` records who carried it out
and the runs and audit entries that did, and closes it (`implemented`).

Raising a request needs `git.commit` (whoever changes the platform: developers, traders,
administrators); reading them needs any role of the table. Every step appends an audit entry
(refusals too, by the caller), whose id the request's links keep.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from tasks.access import AccessDenied, Actor
from tradeops.errors import UsageError
from tradeops.store import ChangeApproval, ChangeRequest, session_for
from tradeops.store.models import utcnow
from tradeops.store.records import append_audit, current_flow_run_id

RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")
APPROVAL_KINDS: tuple[str, ...] = ("technical", "business", "security")
REQUIRED_APPROVALS: dict[str, tuple[str, ...]] = {
    "low": ("technical",),
    "medium": ("technical", "business"),
    "high": APPROVAL_KINDS,
    "critical": APPROVAL_KINDS,
}
APPROVAL_PERMISSIONS: dict[str, str] = {
    "technical": "git.merge",
    "business": "experiment.start",
    "security": "compliance.investigate",
}
CREATE_PERMISSION = "git.commit"
IMPLEMENT_PERMISSION = "git.merge"
STATUSES = ("submitted", "approved", "implemented")
NUMBER_ATTEMPTS = 5  # concurrent creators racing for the same CR number retry


class ChangeError(UsageError):
    """A request that cannot be acted on as asked (unknown number, already approved...): exit 2."""


@dataclass(frozen=True)
class ChangeTemplate:
    """Runbook 003's template fields, as a submitter fills them."""

    title: str
    risk: str
    description: str = ""  # what is being changed and why
    benefits: str = ""
    implementation_plan: str = ""
    impacts: str = ""
    mitigation: str = ""
    rollback_plan: str = ""

    def validate(self) -> None:
        if not self.title.strip():
            raise ChangeError("a change request needs a title (--title)")
        if len(self.title) > 200:
            raise ChangeError(f"--title is {len(self.title)} characters; at most 200")
        if self.risk not in RISK_LEVELS:
            raise ChangeError(f"--risk {self.risk!r}: one of {', '.join(RISK_LEVELS)}")


@dataclass(frozen=True)
class ApprovalView:
    kind: str
    approved_by: str
    role: str | None
    approved_at: datetime
    note: str
    audit_entry_id: int | None


@dataclass(frozen=True)
class ChangeRequestView:
    """A change request with its approvals and what is still missing."""

    number: str
    environment: str
    title: str
    risk: str
    status: str
    source: str
    submitted_by: str
    submitted_at: datetime
    description: str
    benefits: str
    implementation_plan: str
    impacts: str
    mitigation: str
    rollback_plan: str
    implemented_by: str | None
    implemented_at: datetime | None
    flow_run_id: str | None
    links: dict[str, Any]
    approvals: list[ApprovalView] = field(default_factory=list)
    required: tuple[str, ...] = ()

    @property
    def missing(self) -> list[str]:
        given = {a.kind for a in self.approvals}
        return [kind for kind in self.required if kind not in given]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["missing"] = self.missing
        return data


def view_of(row: ChangeRequest, approvals: list[ChangeApproval]) -> ChangeRequestView:
    return ChangeRequestView(
        number=row.number, environment=row.environment, title=row.title, risk=row.risk, status=row.status,
        source=row.source, submitted_by=row.submitted_by, submitted_at=row.submitted_at,
        description=row.description, benefits=row.benefits, implementation_plan=row.implementation_plan,
        impacts=row.impacts, mitigation=row.mitigation, rollback_plan=row.rollback_plan,
        implemented_by=row.implemented_by, implemented_at=row.implemented_at, flow_run_id=row.flow_run_id,
        links=json.loads(row.links_json or "{}"),
        approvals=[ApprovalView(a.kind, a.approved_by, a.role, a.approved_at, a.note, a.audit_entry_id)
                   for a in sorted(approvals, key=lambda a: a.id or 0)],
        required=REQUIRED_APPROVALS[row.risk])


def require_reader(actor: Actor) -> None:
    """Reading change requests needs a role in the environment, any of runbook 000's."""
    if actor.grants is None:
        raise AccessDenied(f"user {actor.user!r} has no role in this environment ([access] users): "
                           "reading change requests denied")


def _next_number(session, environment: str, year: int) -> str:
    prefix = f"CR-{year}-"
    numbers = session.exec(select(ChangeRequest.number).where(
        ChangeRequest.environment == environment, ChangeRequest.number.startswith(prefix))).all()
    last = max((int(n.removeprefix(prefix)) for n in numbers if n.removeprefix(prefix).isdigit()), default=0)
    return f"{prefix}{last + 1:03d}"


def _insert(store_url: str, environment: str, template: ChangeTemplate, actor: Actor, source: str,
            status: str, links: dict[str, Any], implemented: bool) -> ChangeRequest:
    for attempt in range(NUMBER_ATTEMPTS):
        with session_for(store_url) as session:
            now = utcnow()
            row = ChangeRequest(
                environment=environment, number=_next_number(session, environment, now.year), title=template.title,
                description=template.description, benefits=template.benefits,
                implementation_plan=template.implementation_plan, impacts=template.impacts,
                mitigation=template.mitigation, rollback_plan=template.rollback_plan, risk=template.risk,
                status=status, source=source, submitted_by=actor.user, submitted_at=now,
                implemented_by=actor.user if implemented else None, implemented_at=now if implemented else None,
                flow_run_id=current_flow_run_id(), links_json=json.dumps(links, sort_keys=True, default=str))
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # another creator took this number first
                session.rollback()
                if attempt == NUMBER_ATTEMPTS - 1:
                    raise
                continue
            session.refresh(row)
            return row
    raise AssertionError("unreachable")


def _audit_links(store_url: str, row_id: int, **more: Any) -> None:
    """Add to a request's links: lists (audit entries, runs) grow, other values are set."""
    with session_for(store_url) as session:
        stored = session.get(ChangeRequest, row_id)
        links = json.loads(stored.links_json or "{}")
        for key, value in more.items():
            if isinstance(value, list):
                links[key] = [*links.get(key, []), *value]
            else:
                links[key] = value
        stored.links_json = json.dumps(links, sort_keys=True, default=str)
        session.add(stored)
        session.commit()


def create_change(store_url: str, environment: str, template: ChangeTemplate, actor: Actor,
                  source: str = "cli", links: dict[str, Any] | None = None) -> ChangeRequestView:
    """Raise a change request (status submitted) as `actor`, who needs `git.commit`; audited."""
    template.validate()
    actor.require(CREATE_PERMISSION)
    row = _insert(store_url, environment, template, actor, source, "submitted", links or {}, implemented=False)
    entry = append_audit(store_url, "change_create", actor.user, details={
        "change_request": row.number, "environment": environment, "risk": row.risk, "title": row.title,
        "source": source, "role": actor.role, "required_approvals": list(REQUIRED_APPROVALS[row.risk])})
    _audit_links(store_url, row.id, audit_entries=[entry.id])
    return find_change(store_url, environment, row.number)


def raise_implemented_change(store_url: str, environment: str, template: ChangeTemplate, actor: Actor,
                             source: str, links: dict[str, Any], approved_by: str | None = None
                             ) -> ChangeRequestView:
    """A standard change that its own procedure approved and carried out (a strategy promotion,
    approved by the promotion rules): recorded as implemented at once, linked to what did it."""
    template.validate()
    row = _insert(store_url, environment, template, actor, source, "implemented",
                  {**links, "approved_through": source, **({"approved_by": approved_by} if approved_by else {})},
                  implemented=True)
    entry = append_audit(store_url, "change_implemented", actor.user, details={
        "change_request": row.number, "environment": environment, "risk": row.risk, "title": row.title,
        "source": source, "role": actor.role, "standard_change": True, **links})
    _audit_links(store_url, row.id, audit_entries=[entry.id])
    return find_change(store_url, environment, row.number)


def _row(session, environment: str, number: str) -> ChangeRequest:
    row = session.exec(select(ChangeRequest).where(ChangeRequest.environment == environment,
                                                   ChangeRequest.number == number.upper())).first()
    if row is None:
        raise ChangeError(f"no change request {number!r} in environment {environment!r}")
    return row


def find_change(store_url: str, environment: str, number: str) -> ChangeRequestView:
    with session_for(store_url) as session:
        row = _row(session, environment, number)
        approvals = session.exec(select(ChangeApproval).where(ChangeApproval.change_request_id == row.id)).all()
        return view_of(row, list(approvals))


def list_changes(store_url: str, environment: str, status: str | None = None) -> list[ChangeRequestView]:
    with session_for(store_url) as session:
        query = select(ChangeRequest).where(ChangeRequest.environment == environment)
        if status:
            query = query.where(ChangeRequest.status == status)
        rows = session.exec(query.order_by(ChangeRequest.id)).all()
        approvals = session.exec(select(ChangeApproval).where(
            ChangeApproval.change_request_id.in_([r.id for r in rows]))).all() if rows else []
        return [view_of(row, [a for a in approvals if a.change_request_id == row.id]) for row in rows]


def approve_change(store_url: str, environment: str, number: str, kind: str, actor: Actor,
                   note: str = "") -> ChangeRequestView:
    """Give one approval of `kind`. Refused (AccessDenied, exit 3) when the actor's role lacks the
    kind's permission, they submitted the request, or they approved it already; a usage error when
    the kind is not one the request's risk asks for, it was given already, or the request is not
    awaiting approvals. The last required approval makes the request `approved`."""
    if kind not in APPROVAL_KINDS:
        raise ChangeError(f"--as {kind!r}: one of {', '.join(APPROVAL_KINDS)}")
    current = find_change(store_url, environment, number)
    actor.require(APPROVAL_PERMISSIONS[kind])
    if actor.user == current.submitted_by:
        raise AccessDenied(f"user {actor.user!r} submitted {current.number} and may not approve it "
                           "(runbook 003: approval by someone else)")
    if any(a.approved_by == actor.user for a in current.approvals):
        given = next(a.kind for a in current.approvals if a.approved_by == actor.user)
        raise AccessDenied(f"user {actor.user!r} gave {current.number}'s {given} approval already; "
                           f"its {kind} approval needs another user")
    if current.status != "submitted":
        raise ChangeError(f"{current.number} is {current.status}: it takes no more approvals")
    if kind not in current.required:
        raise ChangeError(f"{current.number} is {current.risk} risk: it needs {', '.join(current.required)} "
                          f"approval, not {kind}")
    if kind not in current.missing:
        raise ChangeError(f"{current.number} has its {kind} approval already")
    complete = not [k for k in current.missing if k != kind]
    entry = append_audit(store_url, "change_approve", actor.user, details={
        "change_request": current.number, "environment": environment, "kind": kind, "role": actor.role,
        "permission": APPROVAL_PERMISSIONS[kind], "note": note, "complete": complete})
    with session_for(store_url) as session:
        row = _row(session, environment, number)
        session.add(ChangeApproval(change_request_id=row.id, kind=kind, approved_by=actor.user, role=actor.role,
                                   note=note, audit_entry_id=entry.id))
        if complete:
            row.status = "approved"
            session.add(row)
        session.commit()
        row_id = row.id
    _audit_links(store_url, row_id, audit_entries=[entry.id])
    return find_change(store_url, environment, number)


def mark_implemented(store_url: str, environment: str, number: str, actor: Actor,
                     links: dict[str, Any] | None = None) -> ChangeRequestView:
    """Record that an approved request was carried out (needs `git.merge`), with the runs and
    audit entries that did it; audited."""
    current = find_change(store_url, environment, number)
    actor.require(IMPLEMENT_PERMISSION)
    if current.status != "approved":
        missing = f" (missing: {', '.join(current.missing)} approval)" if current.missing else ""
        raise ChangeError(f"{current.number} is {current.status}{missing}: only an approved request is implemented")
    entry = append_audit(store_url, "change_implemented", actor.user, details={
        "change_request": current.number, "environment": environment, "role": actor.role, **(links or {})})
    with session_for(store_url) as session:
        row = _row(session, environment, number)
        row.status, row.implemented_by, row.implemented_at = "implemented", actor.user, utcnow()
        session.add(row)
        session.commit()
        row_id = row.id
    _audit_links(store_url, row_id, audit_entries=[entry.id], **(links or {}))
    return find_change(store_url, environment, number)
