"""Alerts people can live with (Alertmanager's semantics, kept in the ops store): a condition that
keeps failing is one notification when it starts, a reminder every repeat interval (default 4 h)
while it lasts, and a resolved notice when it clears; a silenced group stays quiet until its
silence expires. Groups are per environment and condition key (`<condition>:<target>`).

`plan_notices` decides (plain function over the stored groups and this run's findings);
`deliver_notices` sends the decided ones through `send_once` and records what went out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from blocks.alerts import AlertChannel
from tasks.alerts import Alert, send_once
from tradeops.clock import utcnow
from tradeops.store.engine import session_for
from tradeops.store.models import AlertGroup

DEFAULT_REPEAT = timedelta(hours=4)  # Alertmanager's repeat_interval default


@dataclass(frozen=True)
class Finding:
    """A condition failing in this run."""

    key: str  # <condition>:<target>
    condition: str
    target: str
    severity: str
    summary: str
    details: str = ""


@dataclass(frozen=True)
class Notice:
    key: str
    kind: str  # firing, reminder, resolved, quiet (already notified), silenced
    severity: str
    summary: str
    condition: str = ""
    target: str = ""
    details: str = ""
    number: int = 0  # which notification of the group this is
    first_seen_at: str = ""
    status: str = ""  # the delivery outcome, once delivered

    @property
    def sends(self) -> bool:
        return self.kind in ("firing", "reminder", "resolved")

    def as_dict(self) -> dict:
        return asdict(self)


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def plan_notices(store_url: str, environment: str, findings: list[Finding], evaluated: set[str],
                 repeat: timedelta = DEFAULT_REPEAT) -> list[Notice]:
    """Update the groups with this run's findings and say which notices are due. `evaluated`: the
    condition keys this run looked at (a group not looked at is left as it is, firing or not)."""
    now = utcnow()
    notices: list[Notice] = []
    with session_for(store_url) as session:
        groups = {g.group_key: g for g in session.exec(select(AlertGroup).where(
            AlertGroup.environment == environment))}
        for finding in findings:
            group = groups.get(finding.key)
            if group is None or group.status == "resolved":
                group = group or AlertGroup(environment=environment, group_key=finding.key, status="firing",
                                            severity=finding.severity, first_seen_at=now)
                group.status, group.first_seen_at, group.resolved_at = "firing", now, None
                group.occurrences, group.notifications, group.last_notified_at = 0, 0, None
            group.severity, group.summary, group.last_seen_at = finding.severity, finding.summary, now
            group.occurrences += 1
            silenced = _aware(group.silenced_until)
            if silenced and silenced > now:
                kind = "silenced"
            elif group.last_notified_at is None:
                kind = "firing"
            elif now - _aware(group.last_notified_at) >= repeat:
                kind = "reminder"
            else:
                kind = "quiet"
            session.add(group)
            notices.append(Notice(finding.key, kind, finding.severity, finding.summary, finding.condition,
                                  finding.target, finding.details, group.notifications + 1,
                                  _aware(group.first_seen_at).isoformat()))
        firing_now = {f.key for f in findings}
        for key, group in groups.items():
            if group.status != "firing" or key in firing_now or key not in evaluated:
                continue
            group.status, group.resolved_at = "resolved", now
            session.add(group)
            if group.notifications:  # nobody heard it fire (silenced throughout): no resolved notice
                condition, _, target = key.partition(":")
                notices.append(Notice(key, "resolved", group.severity, f"resolved: {group.summary}", condition,
                                      target, f"firing since {_aware(group.first_seen_at).isoformat()}, "
                                              f"{group.occurrences} failing run(s)",
                                      group.notifications + 1, _aware(group.first_seen_at).isoformat()))
        session.commit()
    return notices


def notice_alert(notice: Notice) -> Alert:
    prefix = {"firing": "", "reminder": "still failing: ", "resolved": ""}[notice.kind]
    return Alert(key=f"condition:{notice.key}:{notice.first_seen_at}:{notice.number}", severity=notice.severity,
                 summary=prefix + notice.summary, details=notice.details, target=notice.target,
                 name=notice.condition or "TradeopsCondition", resolved=notice.kind == "resolved")


def deliver_notices(store_url: str, environment: str, notices: list[Notice],
                    channels: list[AlertChannel]) -> list[Notice]:
    """Send the due notices; a group counts a notification once some channel (or none wanting it)
    took it, so a notice no channel accepted is tried again by the next run."""
    delivered = []
    for notice in notices:
        if not notice.sends:
            delivered.append(notice)
            continue
        outcome = send_once(store_url, environment, notice_alert(notice), channels)
        took = outcome.status in ("sent", "partly sent", "already sent", "no channel")
        if took:
            with session_for(store_url) as session:
                group = session.exec(select(AlertGroup).where(AlertGroup.environment == environment,
                                                              AlertGroup.group_key == notice.key)).one()
                group.notifications = notice.number
                group.last_notified_at = utcnow()
                session.add(group)
                session.commit()
        delivered.append(Notice(**{**asdict(notice), "status": outcome.status}))
    return delivered


def silence(store_url: str, environment: str, key: str, until: datetime) -> None:
    """Silence a group until `until` (it is created, firing or not, if needed)."""
    with session_for(store_url) as session:
        group = session.exec(select(AlertGroup).where(AlertGroup.environment == environment,
                                                      AlertGroup.group_key == key)).first()
        group = group or AlertGroup(environment=environment, group_key=key, severity="low", status="resolved",
                                    resolved_at=utcnow())
        group.silenced_until = until
        session.add(group)
        session.commit()
