"""The alerts a certificate check raises: its expiry milestone, a broken host name or chain,
an unreadable file or endpoint, a renewal that was rolled back.

Keys carry the certificate's fingerprint, so a renewed certificate starts afresh; problems
that persist without a certificate to pin them to (unreadable, failed renewal) carry the date,
so they are repeated once a day.
"""

from __future__ import annotations

from datetime import date

from tasks.alerts import Alert
from tasks.certificates.milestones import milestone_alert_key
from tasks.certificates.renewal import RenewalOutcome
from tasks.certificates.result import CertificateCheck

PROBLEM_SEVERITY = "high"


def _what(check: CertificateCheck) -> str:
    names = f" ({', '.join(check.names)})" if check.names else ""
    return f"{check.name}{names}"


def certificate_alerts(check: CertificateCheck, today: date) -> list[Alert]:
    """The alerts one inspected certificate calls for (none for a healthy one)."""
    target = f"cert:{check.name}"
    if check.error:
        return [Alert(f"cert:{check.source}:unreadable:{today.isoformat()}", PROBLEM_SEVERITY,
                      f"certificate {check.name} cannot be checked", check.error, target, "CertificateUnreadable")]
    alerts = []
    milestone = check.milestone
    if milestone:
        alerts.append(Alert(
            milestone_alert_key(check.source, check.fingerprint, milestone, today), milestone.severity,
            f"certificate {_what(check)} {check.expiry_text()}, on {check.not_after:%Y-%m-%d %H:%M} UTC",
            f"{check.kind} {check.source} in certificate set {check.target} "
            f"(milestone {milestone.label}, runbook 001 \"Certificate Management\")", target, "CertificateExpiry"))
    for label, verdict in (("hostname", check.hostname), ("chain", check.chain)):
        if verdict.passed is False:
            alerts.append(Alert(f"cert:{check.source}:{check.fingerprint}:{label}", PROBLEM_SEVERITY,
                                f"certificate {check.name}: {label} check failed", verdict.detail, target,
                                "CertificateInvalid"))
    return alerts


def renewal_alert(outcome: RenewalOutcome, today: date) -> Alert:
    """A renewal that did not work out: high, once a day while it keeps failing."""
    return Alert(f"cert-renewal:{outcome.source}:{outcome.old_fingerprint}:{today.isoformat()}", "high",
                 f"certificate {outcome.name}: renewal {outcome.outcome}", outcome.reason,
                 f"cert:{outcome.name}", "CertificateRenewalFailed")
