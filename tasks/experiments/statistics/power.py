"""Power stated honestly: trades still needed, the power a 'no difference' had, and TOST.

Sample sizes use the configured split and each group's observed variance. The fixed-horizon
figures are exact for Welch's t: the power of a two-sided t test is the chance a noncentral t
(df the Welch-Satterthwaite degrees of freedom, noncentrality effect / se) leaves the critical
values, as statsmodels' TTestIndPower computes it (equal variances and a 50/50 split give
exactly its df = n1 + n2 - 2). The normal approximation (``total_trades_fixed``) is kept as the
starting point of the solver and for comparison: it asks a little too few trades (392.4 instead
of 393.4 per group for d = 0.2). For the sequential test the boundary grows with n, so its
needed n is solved numerically on its asymptotic-normal form (larger than fixed).
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


def welch_df(var_c, var_v, n_c, n_v) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom for group variances and sizes."""
    a, b = var_c / n_c, var_v / n_v
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a + b) ** 2 / (a**2 / (n_c - 1) + b**2 / (n_v - 1))


def power_t(effect, se, df, alpha: float) -> np.ndarray:
    """Power of the two-sided t test against ``effect``: P(|T| > t_crit), T ~ noncentral t(df, |effect| / se)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.abs(effect) / se
        crit = stats.t.isf(alpha / 2, df)
        far = stats.nct.cdf(-crit, df, shift)
        # scipy's noncentral t answers NaN for the far tail once the shift is large; it is 0 there
        far = np.where(np.isnan(far) & (shift > 5), 0.0, far)
        return stats.nct.sf(crit, df, shift) + far


def total_trades_t(effect, var_c, var_v, frac_c: float, frac_v: float, alpha: float, power: float,
                   tolerance: float = 1e-12) -> np.ndarray:
    """Total trades N at which Welch's two-sided t test has ``power`` against ``effect`` (exact,
    noncentral t; N is continuous, as statsmodels' solve_power answers). Solved on log N by the
    Illinois method between the normal answer (always too small) and a bracket above it."""
    effect, var_c, var_v = (np.array(a, dtype=float) for a in np.broadcast_arrays(
        np.abs(np.asarray(effect, dtype=float)), np.asarray(var_c, dtype=float), np.asarray(var_v, dtype=float)))
    unit = var_c / frac_c + var_v / frac_v
    start = total_trades_fixed(effect, unit, alpha, power)
    smallest = 2.0 / min(frac_c, frac_v) + 1e-9  # two trades in each group

    def shortfall(log_n):  # < 0 where N trades are not yet enough
        n = np.exp(log_n)
        se = np.sqrt(unit / n)
        return power_t(effect, se, welch_df(var_c, var_v, n * frac_c, n * frac_v), alpha) - power

    solvable = (effect > 0) & np.isfinite(unit) & (unit > 0)
    lo = np.log(np.maximum(np.where(solvable, start, 10.0), smallest))
    f_lo = shortfall(lo)
    hi = lo + np.log(2.0)
    f_hi = shortfall(hi)
    for _ in range(60):  # widen until the bracket holds (a few steps for tiny n)
        short = solvable & (f_hi < 0)
        if not short.any():
            break
        lo, f_lo = np.where(short, hi, lo), np.where(short, f_hi, f_lo)
        hi = np.where(short, hi + np.log(2.0), hi)
        f_hi = np.where(short, shortfall(hi), f_hi)
    done = ~solvable | (f_lo >= 0)
    root = np.where(f_lo >= 0, lo, hi)
    last = np.zeros(lo.shape)  # +1: hi moved last time, -1: lo did
    for _ in range(200):
        if done.all():
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, (lo + hi) / 2)
        fx = shortfall(x)
        enough = fx >= 0  # the root is at or below x
        f_lo = np.where(enough & (last == 1), f_lo / 2, np.where(enough, f_lo, fx))
        f_hi = np.where(~enough & (last == -1), f_hi / 2, np.where(enough, fx, f_hi))
        lo, hi = np.where(enough, lo, x), np.where(enough, x, hi)
        last = np.where(enough, 1.0, -1.0)
        root = np.where(done, root, x)
        done = done | (np.abs(fx) < 1e-15) | ((hi - lo) < tolerance)
    return np.where(solvable, np.exp(root), np.inf)


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
    """Power of the two-sided fixed-horizon test at the current n against ``effect``, normal
    approximation (``power_t`` is the exact t answer)."""
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
