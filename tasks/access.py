"""Who may do what: runbook 000's role table ("Access Control Management", `rbac.yml`) as data,
and who is acting.

Permissions are `area.action` names; a role's restrictions cap the capital (USD) and duration
(days) of what its holder may start. The user's role comes from the environment's `[access] users`.
Every check that fails raises `AccessDenied` (CLI exit code 3) naming the missing permission or the
limit; callers audit both outcomes.

Who is acting (the trust model, README "Access control"):
- A CLI command acts as the tradeops user its OS account maps to in `[access] logins` (a login not
  listed maps to the user of the same name). The OS account is the process's effective uid, which
  the system authenticated, never an environment variable.
- `--user U` (or TRADEOPS_USER) asks to act as someone else: that needs `access.impersonate`
  (runbook 000's `*`, system administrators); the entries then record both names.
- A flow run started by `tradeops run` acts as the command's user; any other run (a deployment's
  schedule, a worker, the UI's Run button) acts as the environment's service user, `[access] user`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tradeops.errors import TradeopsError, UsageError
from tradeops.store.identity import Identity, bind_identity, bound_identity, os_login
from tradeops.store.records import append_audit

USER_ENV = "TRADEOPS_USER"  # like --user: a request to act as that user
IMPERSONATE = "access.impersonate"  # act as another user; only `*` holds it
CONFIG_CHANGE = "config.change"  # change an environment's configuration (its blocks); only `*` holds it


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
    identity: Identity | None = field(default=None, repr=False)  # how a CLI command came to act as `user`

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

    def describe(self) -> str:
        """The user, role and how they came to act, as a run's first line says it."""
        text = f"{self.user} ({self.role or 'no role'})"
        if self.identity is not None:
            text += f", OS login {self.identity.login}"
            if self.identity.impersonated_by:
                text += f", impersonated by {self.identity.impersonated_by}"
        return text


def actor_for(users: dict[str, str], user: str, identity: Identity | None = None) -> Actor:
    """`user` with the role `users` gives them."""
    role = users.get(user)
    return Actor(user, role, ROLES.get(role) if role else None, identity)


def login_user(logins: dict[str, str], login: str) -> str:
    """The tradeops user an OS account acts as: `[access] logins`, else the user of the same name."""
    return logins.get(login, login)


def command_identity(users: dict[str, str], logins: dict[str, str], requested: str | None) -> Identity:
    """Who a CLI command acts as: its OS login's user, or `requested` (--user, else TRADEOPS_USER)
    when that user may impersonate; AccessDenied (not audited here) when they may not."""
    login = os_login()
    own = login_user(logins, login)
    requested = requested or os.environ.get(USER_ENV) or None
    if requested is None or requested == own:
        return Identity(own, login)
    try:
        actor_for(users, own).require(IMPERSONATE)
    except AccessDenied as exc:
        raise AccessDenied(f"OS login {login!r} acts as {own!r}, who may not act as {requested!r} "
                           f"(--user / {USER_ENV}): {exc}") from None
    return Identity(requested, login, impersonated_by=own)


def cli_actor(env, requested: str | None, operation: str, environment: str) -> Actor:  # noqa: ANN001
    """The acting user of a CLI command on an applied environment, bound for the rest of the
    command (tradeops.store.identity.identity_scoped); a refused impersonation is audited under
    `operation` and raised. `env` is the TradeopsEnvironment block or its snapshot view
    (tradeops.cli.environment_snapshot.EnvironmentSnapshot): `access_users`, `access_logins`, `store_url()`."""
    try:
        identity = command_identity(env.access_users, env.access_logins, requested)
    except AccessDenied as exc:
        login = os_login()
        own = login_user(env.access_logins, login)
        append_audit(env.store_url(), operation, own, success=False,
                     details={"denied": str(exc), "role": env.access_users.get(own), "permission": IMPERSONATE,
                              "requested_user": requested or os.environ.get(USER_ENV), "login": login,
                              "environment": environment})
        raise
    bind_identity(identity)
    return actor_for(env.access_users, identity.user, identity)


def current_actor(env) -> Actor:  # noqa: ANN001
    """Who a flow run of a loaded environment acts as: the user of the `tradeops run` command that
    started it in this process, else the environment's service user (`[access] user`), else the
    user its OS login maps to."""
    identity = bound_identity()
    if identity is not None:
        return actor_for(env.block.access_users, identity.user, identity)
    if env.block.access_default_user:
        return actor_for(env.block.access_users, env.block.access_default_user)
    return actor_for(env.block.access_users, login_user(env.block.access_logins, os_login()))


def require_permission(env, permission: str, operation: str) -> Actor:  # noqa: ANN001
    """Check the acting user of a loaded environment for `permission`; a denial is audited under
    `operation` and raised (the flow or command fails naming the missing permission)."""
    actor = current_actor(env)
    try:
        actor.require(permission)
    except AccessDenied as exc:
        append_audit(env.store_url, operation, actor.user, success=False,
                     details={"denied": str(exc), "role": actor.role, "permission": permission})
        raise
    return actor
