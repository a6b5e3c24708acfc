"""What inspecting one certificate found: expiry, host names, chain, and why it fails if it does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tasks.certificates.milestones import Milestone, milestone_for


@dataclass(frozen=True)
class Verdict:
    """One check's answer: passed (None: not checked) and what was found."""

    passed: bool | None
    detail: str

    def word(self, yes: str, no: str) -> str:
        """`yes` or `no`, or the detail when the check did not run ("not configured")."""
        return {True: yes, False: no}.get(self.passed, self.detail)


@dataclass(frozen=True)
class CertificateCheck:
    target: str  # the certificate set
    source: str  # the file's path, or host:port
    kind: str  # "file" or "endpoint"
    name: str  # the file's name, or host:port
    error: str | None = None  # could not be read at all
    fingerprint: str | None = None  # SHA-256 of the leaf
    names: tuple[str, ...] = ()  # the leaf's subjectAltName entries
    not_after: datetime | None = None
    days_left: float | None = None
    hostname: Verdict = field(default=Verdict(None, "not checked"))
    chain: Verdict = field(default=Verdict(None, "not checked"))
    action: str = ""  # what cert-check did about it (renewed, rolled back: ...)
    action_failed: bool = False  # a renewal that did not work out

    @property
    def milestone(self) -> Milestone | None:
        return milestone_for(self.days_left) if self.days_left is not None else None

    def expiry_text(self) -> str:
        if self.days_left is None:
            return "expiry unknown"
        if self.days_left <= 0:
            return f"expired {-self.days_left:.1f} days ago"
        return f"expires in {self.days_left:.1f} days"

    def problems(self) -> list[str]:
        """Why this certificate fails the check (empty when it does not)."""
        if self.error:
            return [self.error]
        found = []
        if self.milestone and self.milestone.status == "fail":
            found.append(self.expiry_text())
        if self.hostname.passed is False:
            found.append(f"host name mismatch: {self.hostname.detail}")
        if self.chain.passed is False:
            found.append(f"chain invalid: {self.chain.detail}")
        if self.action_failed:
            found.append(f"renewal {self.action}")
        return found

    @property
    def status(self) -> str:
        if self.problems():
            return "fail"
        return self.milestone.status if self.milestone else "pass"

    def as_dict(self) -> dict:
        return {
            "target": self.target, "source": self.source, "kind": self.kind, "name": self.name,
            "fingerprint": self.fingerprint, "names": list(self.names),
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "days_left": round(self.days_left, 3) if self.days_left is not None else None,
            "hostname": self.hostname.word("match", "mismatch"), "hostname_detail": self.hostname.detail,
            "chain": self.chain.word("valid", "invalid"), "chain_detail": self.chain.detail,
            "action": self.action, "action_failed": self.action_failed, "status": self.status, "problems": self.problems(),
            "error": self.error,
        }
