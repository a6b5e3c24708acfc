"""Power stated honestly: trades still needed, the power a 'no difference' had, and TOST.

Sample sizes use the configured split and each group's observed variance; for the sequential
test the boundary grows with n, so its needed n is solved numerically (larger than fixed).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .sequential import sequential_halfwidth


def total_trades_fixed(effect, unit_variance, alpha: float, power: float) -> np.ndarray:
    """Total trades N at which a two-sided fixed-horizon test has ``power`` against ``effect``;
    ``unit_variance`` = var_c / frac_c + var_v / frac_v, so Var(diff) = unit_variance / N."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(effect != 0, z**2 * unit_variance / effect**2, np.inf)


def total_trades_sequential(effect, unit_variance, alpha: float, power: float, tuning: float) -> np.ndarray:
    """Smallest N with |effect| >= half-width(N) + z_power se(N) for the always-valid interval
    (bisection on log N; vectorised)."""
    z = stats.norm.ppf(power)
    effect = np.abs(np.asarray(effect, dtype=float))
    unit_sd = np.sqrt(unit_variance)

    def short(n):  # True where N trades are not yet enough
        se = unit_sd / np.sqrt(n)
        return sequential_halfwidth(se, n, alpha, tuning) + z * se > effect

    lo, hi = np.full(effect.shape, np.log(2.0)), np.full(effect.shape, np.log(1e15))
    for _ in range(80):
        mid = (lo + hi) / 2
        s = short(np.exp(mid))
        lo, hi = np.where(s, mid, lo), np.where(s, hi, mid)
    solvable = (effect > 0) & np.isfinite(unit_sd) & ~short(np.exp(hi))
    return np.where(solvable, np.exp(hi), np.inf)


def achieved_power_fixed(effect, se, alpha: float) -> np.ndarray:
    """Power of the two-sided fixed-horizon test at the current n against ``effect``."""
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.abs(effect) / se
    return stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)


def achieved_power_sequential(effect, se, n_total, alpha: float, tuning: float) -> np.ndarray:
    """Power of the always-valid interval at the current n to exclude 0 against ``effect``."""
    half = sequential_halfwidth(se, n_total, alpha, tuning)
    with np.errstate(invalid="ignore", divide="ignore"):
        return stats.norm.cdf((np.abs(effect) - half) / se) + stats.norm.cdf((-np.abs(effect) - half) / se)


def tost_welch(diff, se, df, bound) -> dict[str, np.ndarray]:
    """Equivalence by two one-sided Welch tests against ±bound: p = max of the two (fixed horizon)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_lower = stats.t.sf((diff + bound) / se, df)
        p_upper = stats.t.cdf((diff - bound) / se, df)
    return {"bound": bound, "p_lower": p_lower, "p_upper": p_upper, "p": np.maximum(p_lower, p_upper)}
