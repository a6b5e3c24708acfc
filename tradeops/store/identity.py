"""Who a tradeops command acts as, once tasks/access.py has decided it: bound for the rest of the
command, so that flows it runs in this process act as its user and every audit entry it appends
records the OS account that ran it (tradeops.store.records.append_audit)."""

from __future__ import annotations

import functools
import os
import pwd
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable


def os_login() -> str:
    """The OS account this process runs as (its effective uid), which the system authenticated;
    not $USER or $LOGNAME, which anyone can set."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return f"uid-{uid}"


@dataclass(frozen=True)
class Identity:
    """Who a tradeops command acts as (tasks/access.py decides it): the tradeops user, the OS
    account that ran the command, and the user who asked to act as them when not themselves."""

    user: str
    login: str
    impersonated_by: str | None = None

    def details(self) -> dict[str, str]:
        """What every audit entry made under this identity records beside its user."""
        return {"login": self.login, **({"impersonated_by": self.impersonated_by} if self.impersonated_by else {})}


_identity: ContextVar[Identity | None] = ContextVar("tradeops_identity", default=None)


def bind_identity(identity: Identity) -> None:
    """Act as `identity` for the rest of the command (see `identity_scoped`): flows it runs in
    this process act as its user, and its audit entries record its login."""
    _identity.set(identity)


def bound_identity() -> Identity | None:
    return _identity.get()


def identity_scoped(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose identity, once bound, ends with it (tests and callers may run many)."""
    @functools.wraps(command)
    def scoped(*args: Any, **kwargs: Any) -> Any:
        token = _identity.set(None)
        try:
            return command(*args, **kwargs)
        finally:
            _identity.reset(token)
    return scoped
