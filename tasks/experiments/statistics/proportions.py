"""Win rate (share of trades with PnL > 0) per group and the pooled two-proportion z test."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .moments import GroupMoments


def win_rate_test(control: GroupMoments, variant: GroupMoments) -> dict[str, np.ndarray]:
    rate_c, rate_v = control.wins / control.n, variant.wins / variant.n
    pooled = (control.wins + variant.wins) / (control.n + variant.n)
    se = np.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / variant.n))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(se > 0, (rate_v - rate_c) / np.where(se > 0, se, 1.0), np.nan)
    return {"control": rate_c, "variant": rate_v, "diff": rate_v - rate_c, "z": z, "p": 2.0 * stats.norm.sf(np.abs(z))}
