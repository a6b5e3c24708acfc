"""When a certificate's expiry alerts, and how loudly (runbook 001 "Certificate Lifecycle":
warning alerts at 30, 7 and 1 days before expiry; an expired certificate pages the on-call).

The table below is the one place these rules live: the alert severities, which milestones fail
the cert-check run, and the alert keys that make each milestone alert once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Milestone:
    label: str  # in alert keys and reports: "30d", "7d", "1d", "expired"
    days: float  # reached when days left <= days
    severity: str  # alert severity (blocks.alerts.SEVERITIES)
    status: str  # the certificate's status in the report: warn or fail

    @property
    def once_per_day(self) -> bool:
        """An expired certificate alerts every day until it is replaced; the others once."""
        return self.label == "expired"


EXPIRED = Milestone("expired", 0, "critical", "fail")
# most urgent first: the first one reached is the certificate's milestone
CERT_ALERT_MILESTONES: tuple[Milestone, ...] = (
    EXPIRED,
    Milestone("1d", 1, "critical", "fail"),
    Milestone("7d", 7, "high", "fail"),
    Milestone("30d", 30, "medium", "warn"),
)


def milestone_for(days_left: float) -> Milestone | None:
    """The most urgent milestone `days_left` has reached, or None (more than 30 days left)."""
    return next((m for m in CERT_ALERT_MILESTONES if days_left <= m.days), None)


def milestone_alert_key(source: str, fingerprint: str, milestone: Milestone, today: date) -> str:
    """One key per certificate (by fingerprint, so a renewed certificate starts afresh) and
    milestone; an expired certificate's key carries the date, so it alerts once a day."""
    key = f"cert:{source}:{fingerprint}:{milestone.label}"
    return f"{key}:{today.isoformat()}" if milestone.once_per_day else key
