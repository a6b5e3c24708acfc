"""Log check: the newest log file in a folder must be recent (the platform is writing logs)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tasks.health.result import CheckResult, failed, graded
from tasks.health.thresholds import Threshold


def check_newest_log(target: str, folder: str, pattern: str, threshold: Threshold,
                     now: datetime | None = None) -> CheckResult:
    now = now or datetime.now(timezone.utc)
    root = Path(folder)
    if not root.is_dir():
        return failed(f"logs:{target}", "newest_log_age", f"log folder {folder} does not exist")
    files = [p for p in root.glob(pattern) if p.is_file()]
    if not files:
        return failed(f"logs:{target}", "newest_log_age", f"no {pattern} files in {folder}")
    newest = max(files, key=lambda p: p.stat().st_mtime)
    age_min = (now.timestamp() - newest.stat().st_mtime) / 60
    return graded(f"logs:{target}", "newest_log_age", threshold, age_min,
                  f"newest is {newest.name}, written {age_min:.0f} min ago")
