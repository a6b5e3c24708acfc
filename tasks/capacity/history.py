"""The size history kept small over months: compaction of `size_sample` rows.

Every deep health check (every 5 minutes) and backup run records about 15 sizes
(tasks/capacity/sizes.py): some 4,300 rows a day, 1.6 million a year, which a quarterly report over a
year would load whole. Each capacity-report run compacts them: samples older than
`FULL_RESOLUTION_DAYS` keep the last of each hour, older than `HOURLY_UP_TO_DAYS` the last of each
day, per series. Those are exactly the points the forecast keeps when it thins a series
(tasks/capacity/forecast.py `thinned`), so a trend is the same before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect import get_run_logger, task
from sqlmodel import delete, select

from tasks.capacity.forecast import HOURLY_UP_TO_DAYS
from tasks.health.result import as_utc
from tradeops.store.engine import session_for
from tradeops.store.models import SizeSample

FULL_RESOLUTION_DAYS = 14  # newer samples stay as recorded: the daily and weekly ops reports read them
DELETE_CHUNK = 500  # ids per DELETE statement


@dataclass(frozen=True)
class SampleKey:
    """What compaction reads of a `size_sample` row."""
    id: int
    kind: str
    series: str
    sampled_at: datetime  # aware, UTC


def samples_to_drop(samples: list[SampleKey], now: datetime) -> list[int]:
    """Ids of the samples compaction removes: of those older than FULL_RESOLUTION_DAYS, all but the
    last of each hour; older than HOURLY_UP_TO_DAYS, all but the last of each day (per series)."""
    full_since = now - timedelta(days=FULL_RESOLUTION_DAYS)
    hourly_since = now - timedelta(days=HOURLY_UP_TO_DAYS)
    older = [s for s in samples if s.sampled_at < full_since]
    last: dict[tuple[str, str, datetime], SampleKey] = {}
    for sample in older:
        bucket = sample.sampled_at.replace(minute=0, second=0, microsecond=0)
        if sample.sampled_at < hourly_since:
            bucket = bucket.replace(hour=0)
        key = (sample.kind, sample.series, bucket)
        if key not in last or (sample.sampled_at, sample.id) > (last[key].sampled_at, last[key].id):
            last[key] = sample
    kept = {s.id for s in last.values()}
    return sorted(s.id for s in older if s.id not in kept)


def compact_sizes(store_url: str, environment: str, now: datetime) -> int:
    """Remove the environment's samples that `samples_to_drop` names, in one transaction; returns how many."""
    with session_for(store_url) as session:
        rows = session.exec(select(SizeSample.id, SizeSample.kind, SizeSample.series, SizeSample.sampled_at).where(
            SizeSample.environment == environment,
            SizeSample.sampled_at < now - timedelta(days=FULL_RESOLUTION_DAYS))).all()
        drop = samples_to_drop([SampleKey(i, kind, series, as_utc(at)) for i, kind, series, at in rows], now)
        for start in range(0, len(drop), DELETE_CHUNK):
            session.exec(delete(SizeSample).where(SizeSample.id.in_(drop[start:start + DELETE_CHUNK])))
        session.commit()
    return len(drop)


@task(name="compact-sizes")
def compact_sizes_task(env, now: datetime) -> int:  # noqa: ANN001
    """Thin the environment's size history (module docstring); returns how many samples went."""
    dropped = compact_sizes(env.store_url, env.name, now)
    get_run_logger().info("size history compacted: %d samples older than %d days removed", dropped,
                          FULL_RESOLUTION_DAYS)
    return dropped
