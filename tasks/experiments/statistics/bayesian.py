"""A Bayesian reading of the same evidence, beside the frequentist decision (as GrowthBook's
Gaussian effect model since gbstats 2024: the effect's posterior is normal).

The effect (variant - control, PnL per trade) has posterior N(m, s²): with a flat prior m is the
observed difference and s its standard error; with a prior N(0, tau²) both shrink toward 0.
Chance to beat control = P(effect > 0). Expected loss (GrowthBook's "risk") is what a wrong
choice costs on average: shipping the variant loses E[max(0, -effect)], keeping the control
loses E[max(0, effect)], both in PnL per trade.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def normal_posterior(difference, se, prior_sd: float | None) -> tuple[np.ndarray, np.ndarray]:
    if prior_sd is None:
        return np.asarray(difference, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = 1.0 / se**2 + 1.0 / prior_sd**2
        return difference / se**2 / precision, np.sqrt(1.0 / precision)


def bayesian_summary(difference, se, prior_sd: float | None, alpha: float) -> dict[str, np.ndarray]:
    mean, sd = normal_posterior(difference, se, prior_sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = mean / sd
        density = stats.norm.pdf(z)
        loss_variant = sd * density - mean * stats.norm.cdf(-z)  # E[max(0, -effect)]
        loss_control = sd * density + mean * stats.norm.cdf(z)  # E[max(0, effect)]
    half = stats.norm.ppf(1 - alpha / 2) * sd
    return {"posterior_mean": mean, "posterior_sd": sd, "chance_to_beat_control": stats.norm.cdf(z),
            "expected_loss_variant": loss_variant, "expected_loss_control": loss_control,
            "ci_low": mean - half, "ci_high": mean + half}
