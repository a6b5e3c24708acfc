"""Expiry of PITR base backups and WAL by the recovery window (tasks/pitr/expire.py), on a folder
store and on S3 (moto): which backups stay, which WAL goes, what stays untouched, and that the
hundredth daily run keeps the archive at the window's size. The flow, on a real archiving cluster,
is in tests/test_pitr.py."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from blocks import OffsiteStorage
from tasks.pitr.basebackup import BaseBackup, BackupFile, base_backups
from tasks.pitr.expire import expire_pitr, kept_backups
from tasks.pitr.layout import BACKUP_INFO, archive_prefix, base_prefix, wal_key
from tradeops.wal.names import Segment

ENV, TARGET, SEGMENT = "exp", "platform", 16 * 1024 * 1024
SYSTEM, OLD_SYSTEM = 7300000000000000001, 7200000000000000001
START = datetime(2026, 1, 1, 1, 30, tzinfo=timezone.utc)
SEGMENTS_PER_DAY = 4


def segment_name(timeline: int, number: int) -> str:
    return Segment(timeline, number).name(SEGMENT)


def archived(storage: OffsiteStorage, system: int, name: str) -> str:
    """One archived WAL file (the checksum in its name is not checked here)."""
    key = wal_key(archive_prefix(ENV, TARGET, system), f"{name}-{uuid.uuid4().hex * 2}")
    storage.write_bytes(key, b"wal")
    return key


def base_backup_on(storage: OffsiteStorage, system: int, day: int, first_segment: int) -> BaseBackup:
    """A base backup's offsite files and backup.json, stopped on `day` after START, starting at a segment."""
    stopped = START + timedelta(days=day)
    backup_id = f"{stopped:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    prefix = base_prefix(archive_prefix(ENV, TARGET, system), backup_id)
    files = []
    for name in ("base.tar", "pg_wal.tar", "backup_manifest"):
        storage.write_bytes(f"{prefix}/{name}", name.encode())
        files.append(BackupFile(name, len(name), "0" * 64, f"{prefix}/{name}"))
    start_lsn = first_segment * SEGMENT + 0x28
    backup = BaseBackup(backup_id, ENV, TARGET, system, 1, f"{start_lsn >> 32:X}/{start_lsn & 0xFFFFFFFF:X}",
                        f"{(start_lsn + SEGMENT) >> 32:X}/{(start_lsn + SEGMENT) & 0xFFFFFFFF:X}",
                        (stopped - timedelta(minutes=1)).isoformat(), stopped.isoformat(), SEGMENT, 150000,
                        tuple(files))
    storage.write_bytes(f"{prefix}/{BACKUP_INFO}", json.dumps(backup.as_dict()).encode())
    return backup


@pytest.fixture(params=["folder", "s3"])
def storage(request, tmp_path):
    if request.param == "folder":
        return OffsiteStorage(url=f"file://{tmp_path}/offsite")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"tradeops-exp-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return OffsiteStorage(url=f"s3://{bucket}/offsite", endpoint_url=endpoint)


def test_the_window_keeps_its_backups_and_the_newest_before_it():
    day = timedelta(days=1)
    backups = [BaseBackup(str(d), ENV, TARGET, SYSTEM, 1, "0/0", "0/0", "", (START + d * day).isoformat(), SEGMENT,
                          150000) for d in range(10)]
    assert [b.backup_id for b in kept_backups(backups, START + 6.5 * day)] == ["6", "7", "8", "9"]
    assert [b.backup_id for b in kept_backups(backups, START + 6 * day)] == ["6", "7", "8", "9"]  # stopped at its start
    assert [b.backup_id for b in kept_backups(backups, START + 20 * day)] == ["9"]  # none in it: the newest stays
    assert [b.backup_id for b in kept_backups(backups, START - day)] == [str(d) for d in range(10)]
    assert kept_backups([], START) == []


def test_expiry_removes_old_backups_then_the_wal_before_the_oldest_kept_one(storage):
    old_cluster_wal = [archived(storage, OLD_SYSTEM, segment_name(1, n)) for n in range(1, 4)]
    base_backup_on(storage, OLD_SYSTEM, 0, 2)  # a cluster re-initialised since: outside the window
    wal = {n: archived(storage, SYSTEM, segment_name(1 if n < 30 else 2, n)) for n in range(2, 41)}
    history = archived(storage, SYSTEM, "00000002.history")
    marker = archived(storage, SYSTEM, f"{segment_name(1, 9)}.00000028.backup")
    backups = [base_backup_on(storage, SYSTEM, day, 2 + SEGMENTS_PER_DAY * day) for day in range(10)]

    now = START + timedelta(days=9, hours=12)
    plan = expire_pitr(storage, ENV, TARGET, now, window_days=3, dry_run=True)
    assert storage.list_keys(base_prefix(archive_prefix(ENV, TARGET, SYSTEM), backups[0].backup_id) + "/")
    # window from day 6.5: backups of days 7, 8, 9 and the newest before it, day 6
    assert plan.kept == tuple(b.backup_id for b in backups[6:])
    assert set(plan.expired) == {b.backup_id for b in backups[:6]} | {base_backups(storage, ENV, TARGET)[0].backup_id}
    first_kept = 2 + SEGMENTS_PER_DAY * 6  # day 6's start segment: 26
    assert set(plan.wal_keys) == {wal[n] for n in range(2, first_kept)} | {marker}
    assert plan.untouched_clusters == (OLD_SYSTEM,)

    assert expire_pitr(storage, ENV, TARGET, now, window_days=3) == plan
    left = set(storage.list_keys("pitr/"))
    assert {b.backup_id for b in base_backups(storage, ENV, TARGET)} == set(plan.kept)
    assert not any(b.backup_id in key for b in backups[:6] for key in left)  # every file of theirs, not only backup.json
    assert {wal[n] for n in range(first_kept, 41)} | {history} | set(old_cluster_wal) <= left  # both timelines after it
    assert not {wal[n] for n in range(2, first_kept)} & left

    # the next day's run: one more backup, one more expired, the WAL before the new oldest kept one
    backups.append(base_backup_on(storage, SYSTEM, 10, 2 + SEGMENTS_PER_DAY * 10))
    later = expire_pitr(storage, ENV, TARGET, now + timedelta(days=1), window_days=3)
    assert later.expired == (backups[6].backup_id,) and later.kept == tuple(b.backup_id for b in backups[7:])
    assert set(later.wal_keys) == {wal[n] for n in range(first_kept, first_kept + SEGMENTS_PER_DAY)}


def test_the_hundredth_daily_run_keeps_the_archive_at_the_windows_size(tmp_path):
    """A base backup and a day of WAL every day for 100 days, expiry after each: the archive holds
    the window's backups and WAL, never more, and the oldest kept backup's WAL is all there."""
    storage = OffsiteStorage(url=f"file://{tmp_path}/offsite")
    window = 7
    for day in range(100):
        for n in range(SEGMENTS_PER_DAY):
            archived(storage, SYSTEM, segment_name(1, 2 + SEGMENTS_PER_DAY * day + n))
        base_backup_on(storage, SYSTEM, day, 2 + SEGMENTS_PER_DAY * day)
        expire_pitr(storage, ENV, TARGET, START + timedelta(days=day, hours=1), window)
        kept = base_backups(storage, ENV, TARGET)
        assert len(kept) == min(day + 1, window + 1)
        wal = sorted(k for k in storage.list_keys(archive_prefix(ENV, TARGET, SYSTEM) + "/wal/"))
        assert len(wal) == SEGMENTS_PER_DAY * len(kept)
        assert wal[0].rsplit("/", 1)[-1].startswith(segment_name(1, kept[0].start_segment().number))
