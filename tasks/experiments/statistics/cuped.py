"""CUPED: each trade's pre-period PnL (the covariate) takes out the part of the PnL that was
predictable before the experiment, so the same trades give a narrower interval.

As GrowthBook's regression adjustment (gbstats ``compute_theta``): one theta for both groups,
theta = cov(PnL, pre-period PnL) / var(pre-period PnL) over the trades of both groups, and each
trade's adjusted PnL is PnL - theta (pre-period PnL - its mean over both groups). The adjusted
means differ by the raw difference minus theta times the groups' pre-period difference (zero in
expectation when assignment is random), and their variance is var(PnL) (1 - rho²) at best. The
covariate must be measured before the experiment: a variant cannot have changed it.
"""

from __future__ import annotations

import numpy as np


def cuped_theta(control, variant, pre_control, pre_variant, valid_c=None, valid_v=None) -> np.ndarray:
    """Per row: the pooled regression slope of PnL on the pre-period PnL (0 when the covariate is constant)."""
    def sums(y, x, valid):
        if valid is not None:
            y, x = np.where(valid, y, 0.0), np.where(valid, x, 0.0)
            n = valid.sum(axis=1).astype(float)
        else:
            n = np.full(y.shape[0], float(y.shape[1]))
        return n, y.sum(axis=1), x.sum(axis=1), (x * y).sum(axis=1), (x * x).sum(axis=1)

    nc, yc, xc, xyc, xxc = sums(control, pre_control, valid_c)
    nv, yv, xv, xyv, xxv = sums(variant, pre_variant, valid_v)
    n, y, x = nc + nv, yc + yv, xc + xv
    covariance = (xyc + xyv) - x * y / n
    variance = (xxc + xxv) - x * x / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, covariance / np.where(variance > 0, variance, 1.0), 0.0)


def cuped_adjust(pnl, pre, theta, pooled_pre_mean) -> np.ndarray:
    """Adjusted PnL per trade: pnl - theta (pre - pooled mean of pre)."""
    return pnl - theta[:, None] * (pre - pooled_pre_mean[:, None])


def pooled_mean(pre_control, pre_variant, valid_c=None, valid_v=None) -> np.ndarray:
    def total(x, valid):
        if valid is None:
            return x.sum(axis=1), np.full(x.shape[0], float(x.shape[1]))
        return np.where(valid, x, 0.0).sum(axis=1), valid.sum(axis=1).astype(float)

    (sc, nc), (sv, nv) = total(pre_control, valid_c), total(pre_variant, valid_v)
    return (sc + sv) / (nc + nv)
