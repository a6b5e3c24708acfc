"""Sample-ratio mismatch: do the trade counts fit the configured split? (chi-square, 1 df)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def srm_test(n_control, n_variant, frac_control: float, frac_variant: float) -> dict[str, np.ndarray]:
    total = n_control + n_variant
    exp_c, exp_v = total * frac_control, total * frac_variant
    chi2 = (n_control - exp_c) ** 2 / exp_c + (n_variant - exp_v) ** 2 / exp_v
    return {"statistic": chi2, "p": stats.chi2.sf(chi2, 1)}
