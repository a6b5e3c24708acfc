"""Pushing an environment's metrics to a Prometheus Pushgateway at the end of every flow run
(`tasks.reporting.publish_summary`), for sites where Prometheus cannot scrape `tradeops metrics serve`.

The gateway is `$TRADEOPS_PUSHGATEWAY_URL`, else the environment block's `metrics_pushgateway_url`
(`[metrics] pushgateway_url` in tradeops.toml); none: nothing is pushed. A URL may carry basic-auth
credentials (`https://user:pass@gw:9091`); they are sent as an Authorization header and never shown.
Each push replaces the group `job="tradeops", environment=<name>` (HTTP PUT): the collector yields
the whole state every time, so nothing stale survives a push. Scrape the gateway with honor_labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prometheus_client.exposition import basic_auth_handler, default_handler, push_to_gateway

from blocks import TradeopsEnvironment
from tasks.metrics.collector import registry_for

PUSHGATEWAY_ENV = "TRADEOPS_PUSHGATEWAY_URL"
BLOCK_FIELD = "metrics_pushgateway_url"
PUSH_JOB = "tradeops"
PUSH_TIMEOUT_SECONDS = 10  # a flow's end waits at most this long for the gateway


@dataclass(frozen=True)
class PushOutcome:
    gateway: str  # scheme://host:port, without credentials
    pushed: bool
    error: str = ""


def pushgateway_url(environment: str) -> str | None:
    """Where to push `environment`'s metrics, or None."""
    if os.environ.get(PUSHGATEWAY_ENV):
        return os.environ[PUSHGATEWAY_ENV]
    if BLOCK_FIELD not in TradeopsEnvironment.model_fields:  # no such setting: no block to load
        return None
    try:
        value = getattr(TradeopsEnvironment.load(environment), BLOCK_FIELD, None)
    except ValueError:  # not applied (a flow run against a bare store): nowhere to push
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def push_environment_metrics(environment: str, store_url: str, gateway: str | None = None) -> PushOutcome | None:
    """Push now; None when no gateway is configured. Never raises: a gateway that is down or
    refuses is an outcome with the reason, for the caller to log."""
    try:
        gateway = gateway or pushgateway_url(environment)
    except Exception as exc:  # noqa: BLE001 - the environment block could not be read: say so, go on
        return PushOutcome(f"(environment {environment!r} block)", False, f"{type(exc).__name__}: {exc}")
    if not gateway:
        return None
    parts = urlsplit(gateway if "://" in gateway else f"http://{gateway}")
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    where = f"{parts.scheme}://{netloc}"
    plain = urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def handler(url, method, timeout, headers, data):  # noqa: ANN001, ANN202 - prometheus_client's signature
        if parts.username is not None:
            return basic_auth_handler(url, method, timeout, headers, data, parts.username, parts.password or "")
        return default_handler(url, method, timeout, headers, data)

    try:
        push_to_gateway(plain, job=PUSH_JOB, registry=registry_for(environment, store_url),
                        grouping_key={"environment": environment}, timeout=PUSH_TIMEOUT_SECONDS, handler=handler)
    except Exception as exc:  # noqa: BLE001 - best effort by design: monitoring must never fail a flow
        return PushOutcome(where, False, f"{type(exc).__name__}: {_without_credentials(str(exc), parts.password)}")
    return PushOutcome(where, True)


def _without_credentials(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text
