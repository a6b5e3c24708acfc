"""Host checks: disk free per path and memory in use (runbook 004 thresholds)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tasks.health.result import CheckResult, failed, graded
from tasks.health.thresholds import Threshold


def check_disk_free(path: str, threshold: Threshold) -> CheckResult:
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return failed(f"disk:{path}", "disk_free", f"cannot read {path}: {exc.strerror}")
    free_pct = 100.0 * usage.free / usage.total
    return graded(f"disk:{path}", "disk_free", threshold, free_pct,
                  f"{free_pct:.1f}% free ({usage.free / 2**30:.1f} of {usage.total / 2**30:.1f} GiB)")


def read_meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """/proc/meminfo as {field: kB}."""
    fields = {}
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0])
    return fields


def check_memory(threshold: Threshold, meminfo: dict[str, int] | None = None) -> CheckResult:
    info = meminfo if meminfo is not None else read_meminfo()
    total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    used_pct = 100.0 * (total - available) / total
    return graded("host", "memory_used", threshold, used_pct,
                  f"{used_pct:.1f}% used ({available / 2**20:.1f} of {total / 2**20:.1f} GiB available)")
