"""The archive index in the ops store: one `LogArchive` row per archive, with its time range and
its members' offsets, so retrieval and retention never have to open an archive to find out."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlmodel import or_, select

from tasks.logs.compression import ArchiveInfo, Member
from tradeops.store import LogArchive, session_for
from tradeops.store.records import current_flow_run_id


def record_archive(store_url: str, environment: str, target: str, log_type: str, source_name: str,
                   archive_name: str, info: ArchiveInfo) -> LogArchive:
    with session_for(store_url) as session:
        row = LogArchive(
            flow_run_id=current_flow_run_id(), environment=environment, target=target, log_type=log_type,
            source_name=source_name, archive_name=archive_name, first_at=info.first_at, last_at=info.last_at,
            lines=info.lines, original_bytes=info.original_bytes, archive_bytes=info.archive_bytes,
            original_sha256=info.original_sha256, archive_sha256=info.archive_sha256,
            members_json=json.dumps(info.members_as_dicts()))
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def archive_named(store_url: str, archive_name: str) -> LogArchive | None:
    with session_for(store_url) as session:
        return session.exec(select(LogArchive).where(LogArchive.archive_name == archive_name)).first()


def members_of(row: LogArchive) -> list[Member]:
    return [Member(**m) for m in json.loads(row.members_json)]


def _has_a_copy():
    return or_(LogArchive.local_deleted_at.is_(None),
               LogArchive.offsite_key.is_not(None) & LogArchive.offsite_deleted_at.is_(None))


def archives(store_url: str, environment: str, target: str | None = None) -> list[LogArchive]:
    """Archives with a copy somewhere (locally or offsite), oldest first."""
    query = select(LogArchive).where(LogArchive.environment == environment, _has_a_copy())
    if target is not None:
        query = query.where(LogArchive.target == target)
    with session_for(store_url) as session:
        return list(session.exec(query.order_by(LogArchive.first_at, LogArchive.id)).all())


def archives_overlapping(store_url: str, environment: str, log_type: str, start: datetime, end: datetime,
                         target: str | None = None) -> list[LogArchive]:
    """Archives of `log_type` holding any second of [start, end), oldest first (index only)."""
    query = select(LogArchive).where(
        LogArchive.environment == environment, LogArchive.log_type == log_type,
        LogArchive.first_at < end, LogArchive.last_at > start, _has_a_copy())
    if target is not None:
        query = query.where(LogArchive.target == target)
    with session_for(store_url) as session:
        return list(session.exec(query.order_by(LogArchive.first_at, LogArchive.id)).all())


def log_types(store_url: str, environment: str) -> list[str]:
    with session_for(store_url) as session:
        return sorted(set(session.exec(select(LogArchive.log_type).where(LogArchive.environment == environment)).all()))


def update_archive(store_url: str, archive_id: int, **changes) -> None:
    with session_for(store_url) as session:
        row = session.get(LogArchive, archive_id)
        for key, value in changes.items():
            setattr(row, key, value)
        session.add(row)
        session.commit()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
