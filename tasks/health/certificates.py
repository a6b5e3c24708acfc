"""Certificate checks: days left for every file and endpoint (alerts at 30, 7, 1 days)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tasks.certificates import read_certificate_file, read_endpoint_certificate
from tasks.health.result import CheckResult, failed, graded
from tasks.health.thresholds import Threshold


def check_certificates(files: list[str], endpoints: list[str], threshold: Threshold,
                       now: datetime | None = None) -> list[CheckResult]:
    now = now or datetime.now(timezone.utc)
    results = []
    for source, reader in [*((f, read_certificate_file) for f in files),
                           *((e, read_endpoint_certificate) for e in endpoints)]:
        name = Path(source).name if source in files else source
        try:
            info = reader(source)
        except Exception as exc:  # noqa: BLE001 - unreadable certificate is a failed check
            results.append(failed(f"cert:{name}", "certificate_expiry", f"cannot read {source}: {exc}"))
            continue
        days = info.days_left(now)
        when = f"expired {-days:.1f} days ago" if days < 0 else f"expires in {days:.1f} days"
        results.append(graded(f"cert:{name}", "certificate_expiry", threshold, days,
                              f"{name} ({info.subject or ', '.join(info.dns_names)}) {when}, "
                              f"on {info.not_after:%Y-%m-%d %H:%M} UTC"))
    return results
