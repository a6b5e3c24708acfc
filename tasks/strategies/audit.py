"""Change control read back from the ops store's audit trail: approvals, version authors, and the
production pointer's history (for rollback when the reflog cannot tell).

Approvals are audit entries (operation `strategy_approve`), so they sit in the same hash chain as
the promotions they allow. The approving permission is runbook 000's `git.merge`: the permission
that moves code into a deployed branch, held by senior_trader and system_administrator. An
approval counts for a promotion when it names the version's current commit, was given by neither
the version's author nor the promoter, and its user still holds `git.merge` in the access table.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select

from tasks.access import AccessDenied, Actor, actor_for
from tasks.strategies import APPROVAL_PERMISSION
from tasks.strategies.versioning import PointerMove, SemVer
from tradeops.store import AuditEntry, session_for

APPROVE_OPERATION = "strategy_approve"
VERSION_OPERATION = "strategy_version"
PROMOTE_OPERATION = "strategy_promote"
ROLLBACK_OPERATION = "strategy_rollback"


@dataclass(frozen=True)
class Approval:
    user: str
    version: str
    commit: str | None
    audit_id: int


def _entries(store_url: str, strategy: str, operations: tuple[str, ...],
             version: str | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.strategy_name == strategy, AuditEntry.success == True,  # noqa: E712
                                     AuditEntry.operation.in_(operations))
    if version is not None:
        query = query.where(AuditEntry.version == version)
    with session_for(store_url) as session:
        return list(session.exec(query.order_by(AuditEntry.id)).all())


def version_author(store_url: str, strategy: str, version: str, tagger: str | None) -> str | None:
    """Who made `version`: the user of its `strategy_version` audit entry, else the tag's tagger
    (versions tagged outside tradeops)."""
    made = _entries(store_url, strategy, (VERSION_OPERATION,), version)
    return made[-1].user if made else tagger


def approvals_of(store_url: str, strategy: str, version: str) -> list[Approval]:
    return [Approval(e.user, e.version, e.repository_hash, e.id)
            for e in _entries(store_url, strategy, (APPROVE_OPERATION,), version)]


def check_approver(actor: Actor, strategy: str, version: str, author: str | None) -> None:
    """Raise AccessDenied unless `actor` may approve: the approval permission, and not their own version."""
    actor.require(APPROVAL_PERMISSION)
    if author is not None and actor.user == author:
        raise AccessDenied(f"user {actor.user!r} made {strategy} {version} and cannot approve it "
                           "(segregation of duties: another user must approve)")


def approval_for_promotion(approvals: list[Approval], commit: str, promoter: str, author: str | None,
                           users: dict[str, str]) -> Approval | None:
    """The first approval that allows `promoter` to deploy `commit`, if any."""
    for approval in approvals:
        if approval.commit != commit or approval.user in (promoter, author):
            continue
        grants = actor_for(users, approval.user).grants
        if grants is not None and grants.allows(APPROVAL_PERMISSION):
            return approval
    return None


def required_approval(store_url: str, strategy: str, repo, tag: str, commit: str, actor: Actor,
                      users: dict[str, str], approval_required: bool) -> tuple[Approval | None, str | None]:
    """The approval that lets `actor` put `tag` (at `commit`) in production, and the version's author.
    With `approval_required` and no such approval: AccessDenied naming who may approve."""
    version = str(SemVer.parse(tag)) if SemVer.parse(tag) else tag
    tag_object = repo[repo.references[f"refs/tags/{tag}"].target]
    author = version_author(store_url, strategy, version, getattr(getattr(tag_object, "tagger", None), "name", None))
    approvals = approvals_of(store_url, strategy, version)
    approval = approval_for_promotion(approvals, commit, actor.user, author, users)
    if approval_required and approval is None:
        on_record = ", ".join(sorted({a.user for a in approvals})) or "none"
        raise AccessDenied(f"promoting {strategy} {tag} needs an approval by a user with {APPROVAL_PERMISSION} "
                           f"other than {actor.user!r} and the author {author!r} "
                           f"([strategies] approval_required); approvals on record: {on_record}")
    return approval, author


def audit_history(store_url: str, strategy: str) -> list[PointerMove]:
    """The production pointer's moves made through tradeops, oldest first, from the audit trail."""
    return [PointerMove("rollback" if e.operation == ROLLBACK_OPERATION else "promote", e.repository_hash,
                        f"v{e.version}" if e.version else None, e.user)
            for e in _entries(store_url, strategy, (PROMOTE_OPERATION, ROLLBACK_OPERATION))
            if e.repository_hash]
