"""Per-trade Sharpe ratios (per period = per trade, not annualised), their difference, and PSR.

Standard error: Lo (2002)'s asymptotic variance of the Sharpe estimator, in the non-normal form
of Mertens (2002) that Bailey & López de Prado use, (1 - skew SR + (kurt - 1)/4 SR²) / (n - 1)
with ORDINARY kurtosis (normal = 3; passing excess kurtosis, as quantstats does, is wrong).
The two groups are disjoint trade sets, so the difference's variance is the sum of the two.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .moments import GroupMoments


def sharpe_ratio(m: GroupMoments) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m.var > 0, m.mean / m.sd, np.nan)


def sharpe_variance(sr, n, skewness, kurtosis) -> np.ndarray:
    """Variance of the estimated Sharpe ratio (non-normal; equals Lo's 1 + SR²/2 for normal PnL)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1.0 - skewness * sr + (kurtosis - 1.0) / 4.0 * sr**2) / (n - 1.0)


def lo_iid_normal_variance(sr, n) -> np.ndarray:
    """Lo (2002), iid normal returns: (1 + SR²/2) / n; reported beside the non-normal one."""
    return (1.0 + sr**2 / 2.0) / n


def probabilistic_sharpe_ratio(sr, benchmark, n, skewness, kurtosis) -> np.ndarray:
    """P(true Sharpe > benchmark) (Bailey & López de Prado 2012), kurtosis ordinary."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return stats.norm.cdf((sr - benchmark) / np.sqrt(sharpe_variance(sr, n, skewness, kurtosis)))


def sharpe_difference_test(control: GroupMoments, variant: GroupMoments) -> dict[str, np.ndarray]:
    sr_c, sr_v = sharpe_ratio(control), sharpe_ratio(variant)
    var_c = sharpe_variance(sr_c, control.n, control.skewness, control.kurtosis)
    var_v = sharpe_variance(sr_v, variant.n, variant.skewness, variant.kurtosis)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(var_c + var_v)
        z = (sr_v - sr_c) / se
    se_lo = np.sqrt(lo_iid_normal_variance(sr_c, control.n) + lo_iid_normal_variance(sr_v, variant.n))
    return {"control": sr_c, "variant": sr_v, "diff": sr_v - sr_c, "se": se, "se_lo_iid_normal": se_lo,
            "z": z, "p": 2.0 * stats.norm.sf(np.abs(z))}
