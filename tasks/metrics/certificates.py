"""Certificate expiry per certificate: from the last cert-check run (its exact notAfter) and the
last health-check run (days left when checked, every 5 minutes), the newer observation winning,
so a certificate renewed outside tradeops stops alerting within one health check.

Both name a certificate the same way: the file's name, or host:port for an endpoint.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterator

from prometheus_client.core import Metric

from tasks.metrics.families import family, parse_time, utc
from tasks.metrics.flow_runs import latest_result
from tasks.metrics.health import latest_health_results

HEALTH_CHECK = "certificate_expiry"
HEALTH_TARGET_PREFIX = "cert:"


def certificate_expiries(store_url: str, environment: str) -> dict[str, datetime]:
    """certificate name -> notAfter, from the newest observation of each."""
    seen: dict[str, tuple[datetime, datetime]] = {}  # name -> (observed, expires)
    found = latest_result(store_url, environment, "cert-check")
    if found:
        observed, result = utc(found[0]), found[1]
        for cert in result.get("certificates") or []:
            expires = parse_time(cert.get("not_after"))
            if expires and cert.get("name"):
                seen[cert["name"]] = (observed, expires)
    for row in latest_health_results(store_url, environment):
        if row.check != HEALTH_CHECK or row.value is None or not row.target.startswith(HEALTH_TARGET_PREFIX):
            continue
        name, observed = row.target[len(HEALTH_TARGET_PREFIX):], utc(row.checked_at)
        if name not in seen or observed > seen[name][0]:
            seen[name] = (observed, observed + timedelta(days=row.value))
    return {name: expires for name, (_, expires) in seen.items()}


def certificate_families(store_url: str, environment: str, now: datetime) -> Iterator[Metric]:
    expiry, days_left = (family("tradeops_certificate_expiry_timestamp_seconds"),
                         family("tradeops_certificate_days_left"))
    for name, expires in sorted(certificate_expiries(store_url, environment).items()):
        expiry.add_metric([environment, name], expires.timestamp())
        days_left.add_metric([environment, name], round((expires - now).total_seconds() / 86400, 3))
    yield from (expiry, days_left)
