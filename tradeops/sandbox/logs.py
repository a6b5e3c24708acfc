"""Application logs: 60 days of rotated files plus the current ones, some oversized.

Log rotation, retention and error-scanning flows need files with realistic names,
increasing timestamps, a mix of levels and modification times matching their last
line. Two files are deliberately larger than 10 MiB (the live ``trading.log`` that was
never rotated, and an old busy-day file past retention). Lines are built in memory
in large chunks and written in one go per file, which keeps ``small`` fast.
"""

from __future__ import annotations

import os
import random
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from .dataset import PLANTED_SCENARIOS, SYMBOLS
from .scales import Scale

BIG_OLD_DAY_OFFSET = 45  # the busy day, days before today, whose trading log is oversized
VENUES = ("XNAS", "XNYS", "ARCA", "BATS", "CME", "LMAX")
REJECT_REASONS = ("risk_limit_exceeded", "price_band", "insufficient_margin", "venue_unavailable")
USERS = ("alice", "bob", "admin", "svc-prefect")
ENDPOINTS = (
    ("GET", "/api/v1/experiments"),
    ("GET", "/api/v1/experiments/{exp}/results"),
    ("POST", "/api/v1/experiments/{exp}/rollback"),
    ("GET", "/api/v1/positions"),
    ("GET", "/api/v1/health"),
    ("PUT", "/api/v1/strategies/{strategy}/params"),
)


def _trading_line(rng: random.Random, strategies: tuple[str, ...], experiments: tuple[str, ...], i: int) -> str:
    r = rng.random()
    strategy = strategies[int(rng.random() * len(strategies))]
    symbol = SYMBOLS[int(rng.random() * len(SYMBOLS))]
    order = f"ord-{i:08d}"
    if r < 0.38:
        side = "buy" if rng.random() < 0.5 else "sell"
        return (f"INFO trading order submitted order_id={order} strategy={strategy} symbol={symbol} "
                f"side={side} qty={10 * (1 + int(rng.random() * 50))} limit={20 + rng.random() * 480:.2f}")
    if r < 0.76:
        return (f"INFO trading order filled order_id={order} strategy={strategy} symbol={symbol} "
                f"qty={10 * (1 + int(rng.random() * 50))} fill_price={20 + rng.random() * 480:.2f} "
                f"venue={VENUES[int(rng.random() * len(VENUES))]} latency_ms={1 + int(rng.random() * 40)}")
    if r < 0.90:
        experiment = experiments[int(rng.random() * len(experiments))]
        grp = "control" if rng.random() < 0.5 else "variant"
        return f"INFO trading experiment={experiment} grp={grp} trade closed pnl={(rng.random() - 0.45) * 60:.2f}"
    if r < 0.96:
        return f"DEBUG trading heartbeat venue={VENUES[int(rng.random() * len(VENUES))]} seq={i}"
    if r < 0.985:
        venue = VENUES[int(rng.random() * len(VENUES))]
        return f"WARN trading slow fill order_id={order} venue={venue} latency_ms={250 + int(rng.random() * 2000)}"
    return (f"ERROR trading order rejected order_id={order} strategy={strategy} symbol={symbol} "
            f"reason={REJECT_REASONS[int(rng.random() * len(REJECT_REASONS))]}")  # fmt: skip


def _risk_line(rng: random.Random, strategies: tuple[str, ...], experiments: tuple[str, ...], i: int) -> str:
    r = rng.random()
    strategy = strategies[int(rng.random() * len(strategies))]
    if r < 0.70:
        return (f"INFO risk exposure check strategy={strategy} gross_exposure_pct={rng.random() * 4:.2f} "
                f"limit_pct=5.0 status=ok")
    if r < 0.85:
        return f"INFO risk var_95 portfolio value_usd={50_000 + rng.random() * 250_000:.0f} horizon=1d"
    if r < 0.97:
        return (f"WARN risk exposure near limit strategy={strategy} gross_exposure_pct={4.5 + rng.random() * 0.5:.2f} "
                f"limit_pct=5.0")
    return (f"ERROR risk limit breached strategy={strategy} metric=drawdown_pct value={5 + rng.random() * 5:.2f} "
            f"limit=5.00 action=reduce_exposure")  # fmt: skip


def _api_line(rng: random.Random, strategies: tuple[str, ...], experiments: tuple[str, ...], i: int) -> str:
    method, route = ENDPOINTS[int(rng.random() * len(ENDPOINTS))]
    path = route.format(exp=experiments[int(rng.random() * len(experiments))],
                        strategy=strategies[int(rng.random() * len(strategies))])  # fmt: skip
    user = USERS[int(rng.random() * len(USERS))]
    r = rng.random()
    if r < 0.93:
        return f"INFO api {method} {path} status=200 duration_ms={2 + int(rng.random() * 80)} user={user}"
    if r < 0.98:
        duration = 1 + int(rng.random() * 5)
        return f"WARN api {method} {path} status=403 duration_ms={duration} user={user} reason=forbidden"
    return f"ERROR api {method} {path} status=504 duration_ms=30000 user={user} upstream=market-data timeout"


LINE_MAKERS = {"trading": _trading_line, "risk": _risk_line, "api": _api_line}


def _render(rng_key: str, component: str, start: datetime, end: datetime, n_lines: int, ctx) -> tuple[str, float]:
    """``n_lines`` lines with non-decreasing timestamps in [start, end]; returns (text, last epoch)."""
    rng = random.Random(rng_key)
    make = LINE_MAKERS[component]
    start_ms = int(start.timestamp() * 1000)
    step_ms = max((int(end.timestamp() * 1000) - start_ms) / n_lines, 0.0)
    lines = []
    last_sec, prefix = None, ""
    ms = start_ms
    for i in range(n_lines):
        ms = start_ms + int((i + rng.random()) * step_ms)
        sec, frac = divmod(ms, 1000)
        if sec != last_sec:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            last_sec = sec
        lines.append(f"{prefix}.{frac:03d}Z {make(rng, *ctx, i)}\n")
    return "".join(lines), ms / 1000


def _write_log(path: Path, component: str, start: datetime, end: datetime, target_bytes: int, seed: int, ctx) -> None:
    """Write at least ``target_bytes`` and set the mtime to the last line's time."""
    estimate = max(10, target_bytes // 138)  # typical line length
    while True:
        text, last = _render(f"{seed}:logs:{path.name}:{estimate}", component, start, end, estimate, ctx)
        data = text.encode()
        if len(data) >= target_bytes:
            break
        estimate = int(estimate * target_bytes / len(data) * 1.02) + 1
    path.write_bytes(data)
    os.utime(path, (last, last))


def create_logs(logs_dir: Path, scale: Scale, seed: int, now: datetime, strategies: tuple[str, ...]) -> None:
    """Dated ``trading-``/``risk-`` logs for the last ``scale.log_days`` days plus today's files."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    experiments = tuple(f"{strategies[sc.strategy_index]}-{sc.name}" for sc in PLANTED_SCENARIOS)
    ctx = (strategies, experiments)
    today = now.astimezone(timezone.utc).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=timezone.utc)

    for offset in range(scale.log_days, 0, -1):
        day: date = today - timedelta(days=offset)
        start = midnight - timedelta(days=offset)
        end = start + timedelta(days=1) - timedelta(milliseconds=1)
        trading_size = scale.big_log_bytes if offset == BIG_OLD_DAY_OFFSET else scale.daily_log_bytes
        _write_log(logs_dir / f"trading-{day:%Y-%m-%d}.log", "trading", start, end, trading_size, seed, ctx)
        _write_log(logs_dir / f"risk-{day:%Y-%m-%d}.log", "risk", start, end, scale.daily_log_bytes // 2, seed, ctx)

    # today's live files, not rotated yet; trading.log has grown past 10 MiB
    today_start = min(midnight, now - timedelta(hours=1))
    _write_log(logs_dir / "trading.log", "trading", today_start, now, scale.big_log_bytes, seed, ctx)
    _write_log(logs_dir / "api.log", "api", today_start, now, scale.current_log_bytes, seed, ctx)
