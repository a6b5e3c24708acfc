"""Two-sample t tests and effect sizes from moments (variant minus control).

Welch's t on raw PnL is the decision test (as GrowthBook); Student's t is reported only
because the runbook's rule may pick it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .moments import GroupMoments


def _t_result(diff, se, df, alpha) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.where(se > 0, se, np.nan)
        t = diff / se
        p = 2.0 * stats.t.sf(np.abs(t), df)
        half = stats.t.ppf(1.0 - alpha / 2.0, df) * se
    return {"diff": diff, "se": se, "t": t, "df": df, "p": p, "ci_low": diff - half, "ci_high": diff + half}


def welch_test(control: GroupMoments, variant: GroupMoments, alpha: float) -> dict[str, np.ndarray]:
    """Welch's unequal-variance t test with its (1 - alpha) CI for the mean difference."""
    a, b = control.var / control.n, variant.var / variant.n
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (a + b) ** 2 / (a**2 / (control.n - 1) + b**2 / (variant.n - 1))
    return _t_result(variant.mean - control.mean, np.sqrt(a + b), df, alpha)


def pooled_variance(control: GroupMoments, variant: GroupMoments) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((control.n - 1) * control.var + (variant.n - 1) * variant.var) / (control.n + variant.n - 2)


def student_test(control: GroupMoments, variant: GroupMoments, alpha: float) -> dict[str, np.ndarray]:
    """Student's pooled-variance t test."""
    se = np.sqrt(pooled_variance(control, variant) * (1.0 / control.n + 1.0 / variant.n))
    return _t_result(variant.mean - control.mean, se, control.n + variant.n - 2, alpha)


def cohen_d(control: GroupMoments, variant: GroupMoments) -> np.ndarray:
    """Signed Cohen's d: mean difference over the pooled standard deviation."""
    sd = np.sqrt(pooled_variance(control, variant))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, (variant.mean - control.mean) / np.where(sd > 0, sd, 1.0), np.nan)


def hedges_g(d: np.ndarray, n_control: np.ndarray, n_variant: np.ndarray) -> np.ndarray:
    """Hedges' g with the usual small-sample factor 1 - 3 / (4 (n1 + n2) - 9), as pingouin."""
    return d * (1.0 - 3.0 / (4.0 * (n_control + n_variant) - 9.0))
