"""cert-check: certificate expiry, host names and chains, renewal with rollback (runbook 001
"Certificate Management"). Daily 02:00 UTC.

Checklist, for every certificate set of the environment:
1. Inspect every certificate file and TLS endpoint: days to expiry; host names (the names
   configured for a file, an endpoint's own host); the chain up to the trusted roots (the set's
   `ca_file`, else the system's).
2. Renew every file with fewer than `renew_below_days` (30) days left, when a renew command is
   configured: back up certificate and key, run the command, validate the new certificate, and
   roll back to the previous files when it does not validate. Every attempt is audited.
3. Inspect the renewed files again.
4. Alert through the configured channels, each alert once: 30 days left (medium), 7 (high),
   1 (critical), expired (critical, daily); a failed host-name or chain check, an unreadable
   certificate, a renewal rolled back (high).
Report: every certificate, soonest expiry first. Failed when a certificate is expired or has 7
days or less, a host-name or chain check fails, a renewal was rolled back, or an alert could
not be delivered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from blocks.certificates import CertificateSet
from tasks.alerts import AlertOutcome, send_once_task
from tasks.certificates import (
    CertificateCheck, RenewalOutcome, certificate_alerts, due_for_renewal, inspect_certificate_set_task, reinspect,
    renew_certificate_task, renewal_alert,
)
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import TargetBusy, lock_for, target_lock
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary
from tasks.access import current_actor
from tradeops.store.records import append_audit

NO_RENEW_COMMAND = "renewal due: no renew_command configured"


@flow(name="cert-check", **FAILURE_HOOKS)
def cert_check(environment: str = "default") -> State:
    """Check every certificate of `environment`, renew what is due, alert, report."""
    env = load_environment(environment)
    now = datetime.now(timezone.utc)
    checks: list[CertificateCheck] = []
    renewals: list[RenewalOutcome] = []
    for certs in env.block.certificate_sets():
        found = inspect_certificate_set_task(certs, now)
        outcomes = renew_due(env, certs, found, now)
        checks += with_renewals(certs, found, outcomes)
        renewals += outcomes
    alerts = [alert for check in checks for alert in certificate_alerts(check, now.date())]
    alerts += [renewal_alert(outcome, now.date()) for outcome in renewals if not outcome.renewed]
    channels = env.block.alert_channels()
    sent = [send_once_task(env.store_url, env.name, alert, channels) for alert in alerts]
    return report_certificates(env, checks, renewals, sent)


def renew_due(env: LoadedEnvironment, certs: CertificateSet, checks: list[CertificateCheck],
              now: datetime) -> list[RenewalOutcome]:
    """Renew the set's files under the threshold, one run at a time per set (the lock)."""
    due = [check for check in checks if due_for_renewal(certs, check)]
    if not due or not certs.renew_command:
        return []
    logger = get_run_logger()
    lock = lock_for("certs", env.name, certs.target, env.store_url)
    outcomes = []
    try:
        with target_lock(lock, f"certificate set {certs.target}"):
            for check in due:
                current = reinspect(certs, check, datetime.now(timezone.utc))
                if not due_for_renewal(certs, current):  # another run renewed it meanwhile
                    continue
                outcomes.append(renew_certificate_task(certs, current, Path(env.block.data_dir)))
    except TargetBusy as exc:
        outcomes = [RenewalOutcome(certs.target, c.source, c.name, "not attempted", str(exc),
                                   old_fingerprint=c.fingerprint) for c in due]
    for outcome in outcomes:
        (logger.info if outcome.renewed else logger.error)(
            "%s: renewal %s (exit code %s)", outcome.name, outcome.action, outcome.exit_code)
        append_audit(env.store_url, "certificate_renewal", current_actor(env).user, success=outcome.renewed,
                     details={"target": certs.target, "file": outcome.source, "old_fingerprint": outcome.old_fingerprint,
                              "new_fingerprint": outcome.new_fingerprint, "outcome": outcome.outcome,
                              "reason": outcome.reason, "backup_dir": outcome.backup_dir})
    return outcomes


def with_renewals(certs: CertificateSet, checks: list[CertificateCheck],
                  outcomes: list[RenewalOutcome]) -> list[CertificateCheck]:
    """The checks as they stand after renewal: renewed files inspected again, each with its action."""
    by_source = {outcome.source: outcome for outcome in outcomes}
    now = datetime.now(timezone.utc)
    updated = []
    for check in checks:
        outcome = by_source.get(check.source)
        if outcome:
            check = reinspect(certs, replace(check, action=outcome.action, action_failed=not outcome.renewed), now)
        elif due_for_renewal(certs, check) and not certs.renew_command:
            check = replace(check, action=NO_RENEW_COMMAND)
        updated.append(check)
    return updated


def failure_lines(checks: list[CertificateCheck], sent: list[AlertOutcome]) -> list[str]:
    """Each certificate and why it fails; each alert channel that refused, with how many alerts."""
    lines = [f"{check.name} {problem}" for check in checks for problem in check.problems()]
    refused = Counter(delivery.describe() for outcome in sent for delivery in outcome.failures)
    lines += [f"alert not delivered, {channel} ({count} alert{'s' * (count > 1)})" for channel, count in refused.items()]
    return lines


def _soonest_first(check: CertificateCheck) -> tuple[int, float]:
    return (0, 0.0) if check.days_left is None else (1, check.days_left)


def report_certificates(env: LoadedEnvironment, checks: list[CertificateCheck], renewals: list[RenewalOutcome],
                        sent: list[AlertOutcome]) -> State:
    checks = sorted(checks, key=_soonest_first)
    failures = failure_lines(checks, sent)
    failure = "; ".join(failures) if failures else None
    rows = [(STATUS_ICON[c.status], c.name, ", ".join(c.names), f"{c.days_left:.1f}" if c.days_left is not None else "",
             f"{c.not_after:%Y-%m-%d %H:%M} UTC" if c.not_after else "", c.hostname.detail, c.chain.detail,
             c.error or c.action) for c in checks]
    sections = [
        f"# Certificate check {env.name}: {'FAILED' if failure else 'passed'}",
        f"**Failed:** {failure}" if failure else "",
        markdown_table(["", "certificate", "names", "days left", "expires on", "hostname", "chain", "action"], rows)
        if rows else "No certificate configured.",
    ]
    if renewals:
        sections.append("## Renewals\n\n" + markdown_table(
            ["certificate", "outcome", "exit code", "old fingerprint", "new fingerprint", "reason", "backup"],
            [(r.name, r.outcome, r.exit_code, (r.old_fingerprint or "")[:16], (r.new_fingerprint or "")[:16],
              r.reason, r.backup_dir) for r in renewals]))
    if sent:
        sections.append("## Alerts\n\n" + markdown_table(
            ["severity", "alert", "status", "channels"],
            [(o.alert.severity, o.alert.summary, o.status,
              "; ".join([d.describe() for d in o.deliveries] + [f"'{c}' earlier" for c in o.skipped]))
             for o in sent]))
    result = {"certificates": [c.as_dict() for c in checks], "renewals": [r.as_dict() for r in renewals],
              "alerts": [o.as_dict() for o in sent], "failures": failures}
    table = [{key: row[key] for key in ("name", "days_left", "hostname", "chain", "action", "status")}
             for row in result["certificates"]]
    result = publish_summary("cert-check", env.name, env.store_url, "\n\n".join(filter(None, sections)), result,
                             failure, table=table, reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)
