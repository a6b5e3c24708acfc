"""Capital limits in percent of total capital (runbook 000 FINRAComplianceMonitor; at or under is
compliant): an experiment's whole allocation, and the largest allocation of one strategy version
(control or variant arm) across the strategy's running experiments. Plain Python: the lifecycle
commands check these without loading the statistics stack.
"""

from __future__ import annotations

import math

CAPITAL_LIMITS = {
    "experiment": (10.0, "experiment allocation", "of total capital"),
    "strategy": (5.0, "single-strategy allocation", "of total capital"),
}


def capital_findings(capital_pct: float | None, strategy_capital_pct: float | None) -> tuple[str, ...]:
    """Compliance findings for capital over the per-experiment / per-strategy limits (FINRA 15c3-5)."""
    findings = []
    for scope, value in (("experiment", capital_pct), ("strategy", strategy_capital_pct)):
        if value is None:
            continue
        limit, what, of_what = CAPITAL_LIMITS[scope]
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{scope} capital percentage must be a finite non-negative number, got {value!r}")
        if value > limit:
            findings.append(f"compliance: {what} {value:g}% {of_what} exceeds the {limit:g}% limit")
    return tuple(findings)
