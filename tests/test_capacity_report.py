"""capacity-report: sizes recorded at health and backup runs, a planted growth forecast checked
against an independent Theil-Sen computation, the report's recommendations on the sandbox."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlmodel import func, insert, select

from conftest import apply_as_own_environment, run_flow
from flows.capacity_report import capacity_report
from flows.health_check import health_check
from tasks.capacity.forecast import HOURLY_UP_TO_DAYS, SizePoint, fit_all, fit_series, load_series
from tasks.capacity.history import FULL_RESOLUTION_DAYS, SampleKey, compact_sizes, samples_to_drop
from tasks.capacity.sizes import SizeMeasurement, save_sizes
from tradeops import clock
from tradeops.store import AuditEntry, SizeSample, session_for
from tradeops.store.engine import upgrade

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

GIB = 1024 ** 3
CAPACITY = 100 * GIB
START, GROWTH_PER_DAY = 40 * GIB, 0.5 * GIB  # 60 days later: 70 GiB; 80% (80 GiB) 20 days after that


def planted_disk(days: int = 60, every_hours: int = 3) -> list[SizeMeasurement | None]:
    """A disk growing GROWTH_PER_DAY, with a deterministic jitter and three outliers (a bulk load
    deleted again): what Theil-Sen must see through."""
    rng = np.random.default_rng(19)
    sizes = []
    for step in range(days * 24 // every_hours):
        size = START + GROWTH_PER_DAY * step * every_hours / 24 + rng.normal(0, 0.05 * GIB)
        if step in (100, 101, 300):
            size += 8 * GIB
        sizes.append(int(size))
    return sizes


def independent_theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The estimator from its definition: the median of every pairwise slope; intercept
    median(y) - slope * median(x)."""
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i, j in itertools.combinations(range(len(x)), 2) if x[j] != x[i]]
    slope = float(np.median(slopes))
    return slope, float(np.median(y) - slope * np.median(x))


def test_a_planted_growth_is_forecast_as_planted(tmp_path):
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    end = datetime(2026, 12, 1, 8, tzinfo=timezone.utc)
    start = end - timedelta(days=60)
    for step, size in enumerate(planted_disk()):
        with clock.frozen_at(start + timedelta(hours=3 * step)):  # each health check's own time
            save_sizes(store, "cap", "health-check", [SizeMeasurement("disk", "/data", size, CAPACITY)])
    [(key, points)] = load_series(store, "cap", start, end).items()
    trend = fit_series(*key, points)

    x = np.array([(p.at - points[0].at).total_seconds() / 86400 for p in points])
    y = np.array([p.size_bytes for p in points], dtype=float)
    slope, intercept = independent_theil_sen(x, y)
    assert trend.points == len(points) == 480
    assert trend.slope_bytes_per_day == pytest.approx(slope, rel=1e-9)
    assert trend.slope_low <= GROWTH_PER_DAY <= trend.slope_high  # the planted growth is inside the interval
    assert trend.slope_bytes_per_day == pytest.approx(GROWTH_PER_DAY, rel=0.01)
    now_fitted = intercept + slope * x[-1]
    assert trend.fitted_bytes == pytest.approx(now_fitted, rel=1e-9)
    central, soonest, latest = trend.days_to[0.8]
    assert central == pytest.approx((0.8 * CAPACITY - now_fitted) / slope, rel=1e-9)
    assert central == pytest.approx(20, abs=0.5)  # the plant: 80 GiB 20 days after the last sample
    assert soonest <= central <= latest
    assert trend.days_to[0.9][0] == pytest.approx(40, abs=1)


def test_no_trend_from_too_few_points_and_none_for_a_shrinking_disk():
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    two = fit_series("disk", "/d", [SizePoint(at, 10, 100), SizePoint(at + timedelta(hours=1), 11, 100)])
    assert two.slope_bytes_per_day is None and two.days_to == {}
    shrinking = fit_series("disk", "/d", [SizePoint(at + timedelta(hours=h), 50 - h, 100) for h in range(10)])
    assert shrinking.days_to[0.8] == (None, None, None)


def test_compaction_keeps_the_last_sample_of_each_hour_then_of_each_day_per_series():
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    full, hourly = now - timedelta(days=FULL_RESOLUTION_DAYS), now - timedelta(days=HOURLY_UP_TO_DAYS)
    samples = [
        SampleKey(1, "disk", "/d", full + timedelta(minutes=5)),  # recent: kept as recorded
        SampleKey(2, "disk", "/d", full + timedelta(minutes=10)),
        SampleKey(3, "disk", "/d", full - timedelta(hours=1, minutes=50)),  # one hour: 4 is its last
        SampleKey(4, "disk", "/d", full - timedelta(hours=1, minutes=10)),
        SampleKey(5, "disk", "/e", full - timedelta(hours=1, minutes=50)),  # another series: its own
        SampleKey(6, "disk", "/d", hourly - timedelta(days=2, hours=5)),  # one day: 8 is its last
        SampleKey(7, "disk", "/d", hourly - timedelta(days=2, hours=3)),
        SampleKey(8, "disk", "/d", hourly - timedelta(days=2, hours=1)),
        SampleKey(9, "table", "/d", hourly - timedelta(days=2, hours=5)),  # another kind: its own
        SampleKey(10, "disk", "/d", full - timedelta(hours=1, minutes=10)),  # same time as 4: the later id stays
    ]
    assert samples_to_drop(samples, now) == [3, 4, 6, 7]
    assert samples_to_drop([s for s in samples if s.id not in (3, 4, 6, 7)], now) == []


def test_a_year_of_five_minute_samples_compacted_monthly_forecasts_as_before(tmp_path):
    """A deep health check every 5 minutes for a year, with capacity-report compacting at each month
    end: the store holds a few thousand rows, not 105,000, and every window's trends are those of
    the full history."""
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    upgrade(store)
    rng = np.random.default_rng(7)
    start = datetime(2025, 12, 1, tzinfo=timezone.utc)
    raw: dict[tuple[str, str], list[SizePoint]] = {}
    dropped = []
    for month in range(12):
        rows = []
        for step in range(30 * 288):
            minutes = (month * 30 * 288 + step) * 5
            at = start + timedelta(minutes=minutes, seconds=int(rng.integers(0, 60)))
            disk = int(START + GROWTH_PER_DAY * minutes / 1440 + rng.normal(0, 0.05 * GIB))
            table = int(GIB + 1000 * minutes + rng.normal(0, 5e5))
            for kind, series, size, capacity in (("disk", "/data", disk, CAPACITY), ("table", "db/t", table, None)):
                rows.append({"environment": "cap", "source": "health-check", "kind": kind, "series": series,
                             "size_bytes": size, "capacity_bytes": capacity, "sampled_at": at})
                raw.setdefault((kind, series), []).append(SizePoint(at, size, capacity))
        with session_for(store) as session:
            session.execute(insert(SizeSample), rows)
            session.commit()
        month_end = start + timedelta(days=30 * (month + 1))
        dropped.append(compact_sizes(store, "cap", month_end))
    now = start + timedelta(days=360)
    assert dropped[0] == 2 * (16 * 288 - 16 * 24)  # the first month's days older than 14 days: hourly
    assert compact_sizes(store, "cap", now) == 0  # the monthly run after the last one: nothing more

    with session_for(store) as session:
        kept = session.exec(select(func.count()).select_from(SizeSample)).one()
    per_series = FULL_RESOLUTION_DAYS * 288 + (HOURLY_UP_TO_DAYS - FULL_RESOLUTION_DAYS) * 24 + 360 - HOURLY_UP_TO_DAYS
    assert abs(kept - 2 * per_series) <= 2 * 3 and kept < 2 * 360 * 288 / 10

    for window_days in (30, 90, 365):
        since = now - timedelta(days=window_days)
        before = fit_all({key: [p for p in points if since <= p.at <= now] for key, points in raw.items()})
        after = fit_all(load_series(store, "cap", since, now))
        assert [(t.kind, t.series, t.last_bytes) for t in after] == [(t.kind, t.series, t.last_bytes) for t in before]
        for a, b in zip(after, before):
            assert (a.slope_bytes_per_day, a.slope_low, a.slope_high, a.fitted_bytes) == pytest.approx(
                (b.slope_bytes_per_day, b.slope_low, b.slope_high, b.fitted_bytes), rel=1e-12), window_days
            assert a.days_to == b.days_to
    [disk] = [t for t in after if t.kind == "disk"]
    assert disk.slope_bytes_per_day == pytest.approx(GROWTH_PER_DAY, rel=0.01)


@pytest.fixture
def sandbox_env(pg_sandbox, tmp_path):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "cap")
    return name, store


def test_health_checks_record_sizes_and_the_report_forecasts_them(sandbox_env):
    name, store = sandbox_env
    run_flow(health_check, environment=name)  # fails on purpose (planted certificates); sizes are recorded anyway
    with session_for(store) as session:
        recorded = session.exec(select(SizeSample).where(SizeSample.environment == name)).all()
    kinds = {(r.kind, r.source) for r in recorded}
    assert {("database", "health-check"), ("table", "health-check"), ("disk", "health-check")} <= kinds
    tables = [r for r in recorded if r.kind == "table"]
    assert any(r.series.endswith("public.trades") and r.size_bytes > 0 for r in tables)  # partitions counted

    end = clock.utcnow() - timedelta(hours=1)
    start = end - timedelta(days=60)
    for step, size in enumerate(planted_disk()):
        with clock.frozen_at(start + timedelta(hours=3 * step)):
            save_sizes(store, name, "health-check", [SizeMeasurement("disk", "/planted", size, CAPACITY)])
    dense = (end - timedelta(days=FULL_RESOLUTION_DAYS + 3)).replace(minute=0, second=0, microsecond=0)
    for minute in (0, 5, 10, 15):  # four samples in one hour older than FULL_RESOLUTION_DAYS: one stays
        with clock.frozen_at(dense + timedelta(minutes=minute)):
            save_sizes(store, name, "health-check", [SizeMeasurement("disk", "/dense", GIB + minute, CAPACITY)])
    state, result = run_flow(capacity_report, environment=name)
    assert result["samples_compacted"] == 3
    with session_for(store) as session:
        dense_left = session.exec(select(SizeSample.size_bytes).where(SizeSample.series == "/dense")).all()
    assert dense_left == [GIB + 15]
    assert "/planted" not in (state.message or "")  # 20 days to 80%: a plan, not critical (this host's own disk may be)
    [planted] = [t for t in result["trends"] if t["series"] == "/planted"]
    assert planted["slope_bytes_per_day"] == pytest.approx(GROWTH_PER_DAY, rel=0.01)
    assert any(r["series"] == "/planted" and "reaches 80%" in r["text"] for r in result["recommendations"])
    report = open(result["report"]).read()
    assert "/planted" in report and "capacity-disks.png" in report
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in result["plots"])
    with session_for(store) as session:
        [audit] = session.exec(select(AuditEntry).where(AuditEntry.operation == "capacity_report")).all()
    assert audit.success and "/planted" in audit.details and '"samples_compacted": 3' in audit.details


def test_a_disk_reaching_90_percent_within_a_week_fails_the_report(sandbox_env):
    name, store = sandbox_env
    end = clock.utcnow() - timedelta(hours=1)
    for day in range(30):  # 60% to 89% in 30 days: 90% tomorrow
        with clock.frozen_at(end - timedelta(days=29 - day)):
            save_sizes(store, name, "health-check", [SizeMeasurement("disk", "/full", (60 + day) * GIB, CAPACITY)])
    state, result = run_flow(capacity_report, environment=name)
    assert state.is_failed() and "/full: reaches 90%" in state.message
