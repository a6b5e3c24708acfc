"""Always-valid inference for the mean difference, so a daily look keeps its error rate.

Asymptotic confidence sequence of Waudby-Smith et al. (arXiv 2103.06476v7, eq. 9 for the
interval, eq. 161 for rho, eq. 155 for the p-value), as in GrowthBook's sequential t-test.
Stateless: it needs only today's cumulative moments, never yesterday's result.
"""

from __future__ import annotations

import numpy as np


def sequential_rho(alpha: float, tuning: float) -> float:
    """Mixing parameter that makes the sequence tightest near ``tuning`` total observations."""
    log_alpha = np.log(alpha)
    return float(np.sqrt((-2.0 * log_alpha + np.log(-2.0 * log_alpha + 1.0)) / tuning))


def sequential_halfwidth(se, n_total, alpha: float, tuning: float):
    """Half-width of the always-valid interval for an estimate with standard error ``se``
    after ``n_total`` observations (per-observation variance = se² x n_total)."""
    rho2 = sequential_rho(alpha, tuning) ** 2
    grow = n_total * rho2 + 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return se * np.sqrt(n_total) * np.sqrt(2.0 * grow * np.log(np.sqrt(grow) / alpha) / (n_total**2 * rho2))


def sequential_p_value(estimate, se, n_total, alpha: float, tuning: float):
    """Always-valid p-value, 1 / e-value capped at 1; below alpha exactly when the interval excludes 0."""
    rho2 = sequential_rho(alpha, tuning) ** 2
    grow = n_total * rho2 + 1.0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z2 = (estimate / se) ** 2
        log_e = rho2 * n_total * z2 / (2.0 * grow) - 0.5 * np.log(grow)
        return np.minimum(np.exp(-log_e), 1.0)


def sequential_test(diff, se, n_total, alpha: float, tuning: float) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore"):
        se = np.where(se > 0, se, np.nan)
    half = sequential_halfwidth(se, n_total, alpha, tuning)
    return {"p": sequential_p_value(diff, se, n_total, alpha, tuning), "ci_low": diff - half, "ci_high": diff + half}
