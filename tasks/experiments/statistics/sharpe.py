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


EULER_GAMMA = 0.5772156649015329


def expected_max_sharpe(n_trials, trial_variance) -> np.ndarray:
    """The Sharpe ratio the best of ``n_trials`` skill-less variants reaches by luck (Bailey & López de
    Prado 2014, "The Deflated Sharpe Ratio", eq. 2 with mean 0): sqrt(V) ((1 - g) Z(1 - 1/N) + g Z(1 - 1/(N e)));
    ``trial_variance`` is the variance of the trials' estimated Sharpe ratios. One trial: 0."""
    n = np.asarray(n_trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n) + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n * np.e))
        return np.where(n > 1, np.sqrt(trial_variance) * z, 0.0)


def deflated_sharpe_ratio(sr, n, skewness, kurtosis, n_trials, trial_variance) -> np.ndarray:
    """P(true Sharpe > what the best of ``n_trials`` would show by luck): the PSR against
    ``expected_max_sharpe``. Several variants of one strategy are several trials; picking the best
    of them is a multiple test the plain PSR ignores."""
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, trial_variance), n, skewness, kurtosis)


def min_track_record_length(sr, benchmark, skewness, kurtosis, probability: float) -> np.ndarray:
    """Minimum track record length (Bailey & López de Prado 2012): the number of trades after which
    the PSR against ``benchmark`` reaches ``probability``, given the observed Sharpe ratio, skewness
    and ordinary kurtosis; infinite when the Sharpe ratio is not above the benchmark."""
    sr = np.asarray(sr, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        length = 1.0 + (1.0 - skewness * sr + (kurtosis - 1.0) / 4.0 * sr**2) * (
            stats.norm.ppf(probability) / (sr - benchmark)) ** 2
        return np.where(sr > benchmark, length, np.where(np.isnan(sr), np.nan, np.inf))
