"""Upgradable OS packages, where apt is present (runbook 003's `apt list --upgradable`): read-only
and offline, from the package lists apt already has (nothing is updated or installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

APT_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class AptStatus:
    present: bool
    upgradable: int | None
    detail: str

    def describe(self) -> str:
        if not self.present:
            return "apt not present"
        return f"{self.upgradable} upgradable" if self.upgradable is not None else f"unknown: {self.detail}"


def count_upgradable(apt: str | None = None) -> AptStatus:
    apt = apt or shutil.which("apt")
    if apt is None:
        return AptStatus(False, None, "apt not present")
    try:
        listed = subprocess.run([apt, "list", "--upgradable"], capture_output=True, text=True,
                                timeout=APT_TIMEOUT_SECONDS, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return AptStatus(True, None, f"apt list --upgradable: {exc}")
    if listed.returncode:
        return AptStatus(True, None, f"apt list --upgradable exited {listed.returncode}: {listed.stderr.strip()[:300]}")
    count = sum(1 for line in listed.stdout.splitlines() if "[upgradable from:" in line)
    return AptStatus(True, count, "from apt's local package lists (not refreshed)")
