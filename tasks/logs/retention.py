"""Retention of log archives (runbook 001: 30 days locally, 1 year offsite), as rules on the index.

An archive's age is the age of its last line. A local copy is deleted only once a verified
offsite copy exists; with no offsite storage configured, the local copy is the only one and is
kept for the offsite period instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tradeops.store import LogArchive


def archive_age_reference(row: LogArchive) -> datetime:
    return row.last_at or row.archived_at


def local_copies_to_delete(rows: list[LogArchive], now: datetime, local_days: int, offsite_days: int,
                           offsite_configured: bool) -> list[LogArchive]:
    keep_days = local_days if offsite_configured else offsite_days
    cutoff = now - timedelta(days=keep_days)
    return [row for row in rows if row.local_deleted_at is None and archive_age_reference(row) < cutoff
            and (row.offsite_key is not None or not offsite_configured)]


def offsite_copies_to_delete(rows: list[LogArchive], now: datetime, offsite_days: int) -> list[LogArchive]:
    cutoff = now - timedelta(days=offsite_days)
    return [row for row in rows if row.offsite_key is not None and row.offsite_deleted_at is None
            and archive_age_reference(row) < cutoff]
