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


def host_cpu_counters() -> tuple[int, int]:
    """(stolen, total) CPU time over all cores so far, in ticks, from /proc/stat; (0, 0) off Linux."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(field) for field in stat.readline().split()[1:9]]
    except OSError:
        return 0, 0
    return ticks[7], sum(ticks)


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> str:
    """The share of CPU time the hypervisor gave to others between two host_cpu_counters() readings:
    on a shared VM it moves throughput more than anything we do, so benchmarks print it."""
    total = after[1] - before[1]
    return f"CPU stolen by the host {100 * (after[0] - before[0]) / total:.0f}%" if total > 0 else "CPU steal unknown"
