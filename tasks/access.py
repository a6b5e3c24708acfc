"""Who may do what: runbook 000's role table ("Access Control Management", `rbac.yml`) as data.

Permissions are `area.action` names; a role's restrictions cap the capital (USD) and duration
(days) of what its holder may start. The acting user comes from `--user`, else `TRADEOPS_USER`,
else the login name; the user's role comes from the environment's `[access] users` table. Every
check that fails raises `AccessDenied` (CLI exit code 3) naming the missing permission or the
limit; callers audit both outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradeops.errors import TradeopsError, UsageError
from tradeops.store.records import acting_user


@dataclass(frozen=True)
class Role:
    permissions: frozenset[str]
    max_capital_usd: float | None = None  # restrictions.max_capital_allocation
    max_duration_days: int | None = None  # restrictions.experiment_duration_max
    read_only: bool = False

    def allows(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions


ROLES: dict[str, Role] = {
    "strategy_developer": Role(frozenset({
        "git.read", "git.commit", "git.create_version",
        "experiment.create", "experiment.read", "experiment.update"}),
        max_capital_usd=1_000_000, max_duration_days=90),
    "senior_trader": Role(frozenset({
        "git.read", "git.commit", "git.create_version", "git.merge",
        "experiment.create", "experiment.read", "experiment.update", "experiment.start", "experiment.stop"}),
        max_capital_usd=10_000_000, max_duration_days=180),
    "system_administrator": Role(frozenset({"*"})),
    "compliance_officer": Role(frozenset({
        "audit.read", "experiment.read", "compliance.report", "compliance.investigate"}), read_only=True),
}


# What the privileged flows need (restore and maintenance: only system_administrator's "*").
FLOW_PERMISSIONS = {
    "restore": "backup.restore",
    "db-maintenance": "database.maintain",
    "compliance-report": "compliance.report",  # compliance officers and administrators
}


class AccessDenied(TradeopsError):
    exit_code = 3


class LimitRefused(UsageError):
    """A request over a limit of runbook 000 that binds every role (an experiment's 10% of total
    capital, a strategy version's 5%): invalid input (exit 2), audited like a denial."""


def audited_refusal(exc: BaseException) -> bool:
    return isinstance(exc, (AccessDenied, LimitRefused))


def refusal_details(exc: TradeopsError) -> dict:
    """What the audit entry of a refused command says: `denied` (the role or its limits, exit 3) or
    `refused` (runbook 000's capital limits, exit 2)."""
    return {"denied" if isinstance(exc, AccessDenied) else "refused": str(exc), "exit_code": exc.exit_code}


@dataclass(frozen=True)
class Actor:
    user: str
    role: str | None
    grants: Role | None = field(default=None, repr=False)

    def require(self, permission: str, capital_usd: float | None = None, duration_days: int | None = None) -> None:
        """Raise AccessDenied unless this user's role grants `permission` within its limits."""
        if self.grants is None:
            raise AccessDenied(f"user {self.user!r} has no role in this environment ([access] users): "
                               f"{permission} denied")
        if not self.grants.allows(permission):
            raise AccessDenied(f"user {self.user!r} ({self.role}) lacks permission {permission}")
        limit = self.grants.max_capital_usd
        if capital_usd is not None and limit is not None and capital_usd > limit:
            raise AccessDenied(f"user {self.user!r} ({self.role}) may allocate at most {limit:,.0f} USD, "
                               f"not {capital_usd:,.0f} ({permission})")
        days = self.grants.max_duration_days
        if duration_days is not None and days is not None and duration_days > days:
            raise AccessDenied(f"user {self.user!r} ({self.role}) may run experiments of at most {days} days, "
                               f"not {duration_days} ({permission})")


def actor_for(users: dict[str, str], given: str | None = None, default_user: str | None = None) -> Actor:
    """The acting user (`--user`, else TRADEOPS_USER, else the environment's `[access] user`, else
    the login) and the role `users` gives them."""
    import os

    user = given or os.environ.get("TRADEOPS_USER") or default_user or acting_user()
    role = users.get(user)
    return Actor(user, role, ROLES.get(role) if role else None)


def current_actor(env) -> Actor:
    """Who a flow run of a loaded environment acts as (for its audit entries)."""
    return actor_for(env.block.access_users, None, env.block.access_default_user)


def require_permission(env, permission: str, operation: str, given_user: str | None = None) -> Actor:
    """Check the acting user of a loaded environment for `permission`; a denial is audited under
    `operation` and raised (the flow or command fails naming the missing permission)."""
    from tradeops.store.records import append_audit

    actor = actor_for(env.block.access_users, given_user, env.block.access_default_user) if given_user \
        else current_actor(env)
    try:
        actor.require(permission)
    except AccessDenied as exc:
        append_audit(env.store_url, operation, actor.user, success=False,
                     details={"denied": str(exc), "role": actor.role, "permission": permission})
        raise
    return actor
