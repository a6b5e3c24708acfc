"""Shared benchmark plumbing: timing medians and a line that states the ratio."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ratio_line(what: str, ours: float, baseline_name: str, baseline: float, rounds: int) -> str:
    return (f"{what} (median of {rounds}): tradeops {ours:.3f} s, {baseline_name} {baseline:.3f} s, "
            f"ratio {baseline / ours:.2f}x")
