"""Alerts to the configured channels: the run log, a webhook (Slack-compatible), Alertmanager.

`send_once` delivers an alert under a key at most once per channel: each channel that accepted
it is recorded in the ops store (AlertSent), so the next run skips it, while a channel that
failed is tried again by the next run. A channel's URL is a secret (it often holds a token):
errors name the channel's kind and target, never its URL.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import select

from blocks.alerts import SEVERITIES, AlertChannel
from tradeops.store.engine import session_for
from tradeops.store.models import AlertSent
from tradeops.store.records import current_flow_run_id

HTTP_TIMEOUT_SECONDS = 10
LOUD_SEVERITIES = ("critical", "high")  # logged as errors by the log channel


@dataclass(frozen=True)
class Alert:
    key: str  # what makes it "the same alert" from one run to the next
    severity: str  # critical, high, medium, low
    summary: str
    details: str = ""
    target: str = ""  # what it is about: a certificate, a database...
    name: str = "TradeopsAlert"  # Alertmanager's alertname
    resolved: bool = False  # a resolved notice: the condition cleared

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert {self.key}: severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")


@dataclass(frozen=True)
class Delivery:
    channel: str  # the channel's block target
    kind: str
    ok: bool
    error: str = ""

    def describe(self) -> str:
        return f"{self.kind} channel '{self.channel}': {'delivered' if self.ok else self.error}"


@dataclass(frozen=True)
class AlertOutcome:
    alert: Alert
    status: str  # sent, already sent, failed, partly sent, no channel
    deliveries: tuple[Delivery, ...] = field(default_factory=tuple)
    skipped: tuple[str, ...] = ()  # channels that had it from an earlier run

    @property
    def failures(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]

    def as_dict(self) -> dict:
        return {**asdict(self.alert), "status": self.status,
                "channels": [d.channel for d in self.deliveries if d.ok],
                "already_sent_to": list(self.skipped),
                "failures": [d.describe() for d in self.failures]}


# -- delivery, per channel kind -------------------------------------------------------------------

def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a flow run (a script, a test)
        return logging.getLogger("tradeops.alerts")


def _post_json(url: str, body: object) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
        response.read()


def _http_error(exc: Exception) -> str:
    """What went wrong, in words that cannot carry the URL (urllib puts it in some messages)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {HTTP_TIMEOUT_SECONDS} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, (str, ValueError)):  # "unknown url type ...", "no host given"
        return "invalid URL"
    return type(reason).__name__


def webhook_body(alert: Alert, environment: str) -> dict:
    """JSON for a generic webhook; `text` is what a Slack incoming webhook shows."""
    text = f"[{'RESOLVED' if alert.resolved else alert.severity.upper()}] {environment}: {alert.summary}"
    return {"text": text + (f"\n{alert.details}" if alert.details else ""), "environment": environment,
            "key": alert.key, "severity": alert.severity, "summary": alert.summary,
            "details": alert.details, "target": alert.target, "status": "resolved" if alert.resolved else "firing"}


def alertmanager_body(alert: Alert, environment: str, now: datetime) -> list[dict]:
    """Alertmanager API v2: a list of alerts, labels and annotations all strings."""
    body = {
        "labels": {"alertname": alert.name, "severity": alert.severity, "environment": environment,
                   "target": alert.target},
        "annotations": {"summary": alert.summary, "description": alert.details or alert.summary},
        "startsAt": now.isoformat(),
    }
    if alert.resolved:  # Alertmanager resolves the alert with these labels
        body["endsAt"] = now.isoformat()
    return [body]


def deliver(channel: AlertChannel, alert: Alert, environment: str) -> Delivery:
    """Hand `alert` to one channel; a failure is a Delivery that says why, not an exception."""
    if channel.kind == "log":
        log = _logger().error if alert.severity in LOUD_SEVERITIES else _logger().warning
        log("[%s] alert %s: %s%s", alert.severity, alert.target or alert.key, alert.summary,
            f" ({alert.details})" if alert.details else "")
        return Delivery(channel.target, channel.kind, True)
    if channel.url is None:
        return Delivery(channel.target, channel.kind, False, "no URL configured")
    url = channel.url.get_secret_value()
    if channel.kind == "alertmanager":
        url, body = url.rstrip("/") + "/api/v2/alerts", alertmanager_body(alert, environment, datetime.now(timezone.utc))
    else:
        body = webhook_body(alert, environment)
    try:
        _post_json(url, body)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        return Delivery(channel.target, channel.kind, False, _http_error(exc))
    return Delivery(channel.target, channel.kind, True)


# -- once per key ---------------------------------------------------------------------------------

def channels_sent(store_url: str, environment: str, key: str) -> set[str]:
    """The channels that already accepted the alert `key`."""
    with session_for(store_url) as session:
        rows = session.exec(select(AlertSent.channels).where(
            AlertSent.environment == environment, AlertSent.alert_key == key)).all()
    return {name for row in rows for name in row.split(",") if name}


def record_sent(store_url: str, environment: str, alert: Alert, channels: list[str],
                flow_run_id: str | None = None) -> None:
    with session_for(store_url) as session:
        session.add(AlertSent(flow_run_id=flow_run_id or current_flow_run_id(), environment=environment,
                              alert_key=alert.key, severity=alert.severity, summary=alert.summary,
                              channels=",".join(channels)))
        session.commit()


def send_once(store_url: str, environment: str, alert: Alert, channels: list[AlertChannel],
              flow_run_id: str | None = None) -> AlertOutcome:
    """Deliver to every channel that wants the severity and has not had this key yet; record the
    channels that accepted it. The channels that failed get it on the next run. `flow_run_id`:
    the run the alert is recorded under, when not the current one (a sweep outside any run)."""
    wanting = [c for c in channels if c.wants(alert.severity)]
    if not wanting:
        return AlertOutcome(alert, "no channel")
    try:
        done = channels_sent(store_url, environment, alert.key)
    except (SQLAlchemyError, OSError) as exc:  # the ops store is down: a repeat beats silence
        _logger().error("the ops store cannot say whether %s was sent (%s): sending it anyway", alert.key,
                        type(exc).__name__)
        done = None
    skipped = tuple(c.target for c in wanting if done and c.target in done)
    deliveries = tuple(deliver(c, alert, environment) for c in wanting if not done or c.target not in done)
    accepted = [d.channel for d in deliveries if d.ok]
    if accepted and done is not None:
        record_sent(store_url, environment, alert, accepted, flow_run_id)
    if not deliveries:
        status = "already sent"
    elif len(accepted) == len(deliveries):
        status = "sent"
    else:
        status = "partly sent" if accepted else "failed"
    return AlertOutcome(alert, status, deliveries, skipped)


# The channels carry secret URLs: never hash them into a cache key (and an alert is never cached).
send_once_task = task(send_once, name="send-alert", cache_policy=NO_CACHE)
