"""The runbook battery: normality per group, Levene, Mann-Whitney U, the runbook's pick, IQR outliers.

All of it is reported; none of it drives the decision (see ``welch``): a normality pre-test
then switch is discouraged, fat-tailed PnL fails normality at any useful n, Mann-Whitney tests
P(X > Y) rather than mean PnL, and dropping outliers drops exactly the tail PnL that matters.
Rows are sorted once per group; medians, quartiles and ranks all come from those sorts.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .moments import GroupMoments

RUNBOOK_TESTS = ("student_t", "welch_t", "mann_whitney_u")
MIN_NORMALITY_N = 8  # D'Agostino's skewness test needs n >= 8 (scipy refuses below)


def dagostino_pearson(m: GroupMoments) -> dict[str, np.ndarray]:
    """D'Agostino-Pearson K² omnibus test (scipy.stats.normaltest) from the sample moments."""
    n = m.n
    with np.errstate(invalid="ignore", divide="ignore"):
        # skewness test
        y = m.skewness * np.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
        beta2 = 3.0 * (n**2 + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
        w2 = -1 + np.sqrt(2 * (beta2 - 1))
        delta = 1 / np.sqrt(0.5 * np.log(w2))
        alpha = np.sqrt(2.0 / (w2 - 1))
        y = np.where(y == 0, 1, y)
        z_skew = delta * np.log(y / alpha + np.sqrt((y / alpha) ** 2 + 1))
        # kurtosis test (Anscombe & Glynn)
        expected = 3.0 * (n - 1) / (n + 1)
        var_b2 = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
        x = (m.kurtosis - expected) / np.sqrt(var_b2)
        sqrt_beta1 = 6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9)) * np.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3)))
        a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + np.sqrt(1 + 4.0 / sqrt_beta1**2))
        denom = 1 + x * np.sqrt(2 / (a - 4.0))
        term2 = np.sign(denom) * np.where(denom == 0.0, np.nan, ((1 - 2.0 / a) / np.abs(denom)) ** (1 / 3.0))
        z_kurt = (1 - 2 / (9.0 * a) - term2) / np.sqrt(2 / (9.0 * a))
        k2 = z_skew**2 + z_kurt**2
    defined = n >= MIN_NORMALITY_N
    return {"statistic": np.where(defined, k2, np.nan), "p": np.where(defined, stats.chi2.sf(k2, 2), np.nan)}


def sorted_quantile(sorted_rows: np.ndarray, q: float, n: np.ndarray | None = None) -> np.ndarray:
    """numpy's default (linear) quantile of each already-sorted row; ``n``: each row's count of
    real values (padding, NaN, sorts after them), None when every row is full."""
    if n is None:
        width = sorted_rows.shape[1]
        pos = q * (width - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, width - 1)
        t = pos - lo
        a, b = sorted_rows[:, lo], sorted_rows[:, hi]
        return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)
    count = n.astype(np.int64)
    pos = q * (count - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, count - 1)
    t = pos - lo
    a = np.take_along_axis(sorted_rows, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(sorted_rows, hi[:, None], axis=1)[:, 0]
    return np.where(t < 0.5, a + (b - a) * t, b - (b - a) * (1 - t))


def levene_median(control: np.ndarray, variant: np.ndarray, med_c, med_v, valid_c=None, valid_v=None
                  ) -> dict[str, np.ndarray]:
    """Levene's test centred on the median (Brown-Forsythe; scipy's and pingouin's default);
    ``valid_*`` mark the real trades of padded rows."""
    zc, zv = np.abs(control - med_c[:, None]), np.abs(variant - med_v[:, None])
    if valid_c is not None:
        zc = np.where(valid_c, zc, 0.0)
    if valid_v is not None:
        zv = np.where(valid_v, zv, 0.0)
    nc = valid_c.sum(axis=1) if valid_c is not None else control.shape[1]
    nv = valid_v.sum(axis=1) if valid_v is not None else variant.shape[1]
    mc, mv = zc.sum(axis=1) / nc, zv.sum(axis=1) / nv
    grand = (nc * mc + nv * mv) / (nc + nv)
    between = nc * (mc - grand) ** 2 + nv * (mv - grand) ** 2
    dc, dv = zc - mc[:, None], zv - mv[:, None]
    if valid_c is not None:
        dc = np.where(valid_c, dc, 0.0)
    if valid_v is not None:
        dv = np.where(valid_v, dv, 0.0)
    within = (dc**2).sum(axis=1) + (dv**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (nc + nv - 2) * between / within
    return {"statistic": w, "p": stats.f.sf(w, 1, nc + nv - 2)}


def tie_term(sorted_combined: np.ndarray) -> np.ndarray:
    """Sum of t³ - t over tie groups of each sorted row (Mann-Whitney variance correction)."""
    rows, n = sorted_combined.shape
    flat = sorted_combined.ravel()
    starts_mask = np.ones(flat.size, dtype=bool)
    starts_mask[1:] = flat[1:] != flat[:-1]
    starts_mask[::n] = True
    starts = np.flatnonzero(starts_mask)
    lengths = np.diff(np.append(starts, flat.size)).astype(float)
    return np.bincount(starts // n, weights=lengths**3 - lengths, minlength=rows)


def mann_whitney(sorted_c: np.ndarray, sorted_v: np.ndarray, n_c: np.ndarray | None = None,
                 n_v: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Two-sided Mann-Whitney U for the variant, normal approximation with tie and continuity
    corrections (scipy's method='asymptotic'); ``common_language`` = U / (n1 n2) = P(V > C) + P(=)/2.
    ``n_c``/``n_v``: real trades per row when rows are padded (NaN sorts last)."""
    rows = sorted_c.shape[0]
    nc = np.full(rows, float(sorted_c.shape[1])) if n_c is None else n_c.astype(float)
    nv = np.full(rows, float(sorted_v.shape[1])) if n_v is None else n_v.astype(float)
    u = np.empty(rows)
    for row, (c, v) in enumerate(zip(sorted_c, sorted_v)):
        c, v = c[:int(nc[row])], v[:int(nv[row])]
        u[row] = 0.5 * (np.searchsorted(c, v, "left").sum() + np.searchsorted(c, v, "right").sum())
    ties = tie_term(np.sort(np.concatenate([sorted_c, sorted_v], axis=1), axis=1))  # NaN padding: no ties
    n = nc + nv
    mu = nc * nv / 2.0
    sigma = np.sqrt(nc * nv / 12.0 * ((n + 1) - ties / (n * (n - 1))))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (np.maximum(u, nc * nv - u) - mu - 0.5) / sigma
        p = np.minimum(2.0 * stats.norm.sf(z), 1.0)
    return {"u": u, "p": p, "common_language": u / (nc * nv)}  # all tied: z = -inf, p = 1 (as scipy)


def runbook_pick(normal_p_c, normal_p_v, levene_p, alpha: float) -> np.ndarray:
    """The runbook's rule, as an index into RUNBOOK_TESTS: both groups normal -> Student if
    Levene keeps equal variances else Welch; otherwise (or normality untestable) Mann-Whitney."""
    both_normal = (normal_p_c >= alpha) & (normal_p_v >= alpha)  # NaN compares False
    equal_var = levene_p >= alpha
    return np.where(both_normal, np.where(equal_var, 0, 1), 2)


def iqr_keep(sorted_rows: np.ndarray, rows: np.ndarray, multiplier: float, n: np.ndarray | None = None) -> np.ndarray:
    """Mask of trades inside the Tukey fences Q1 - k IQR, Q3 + k IQR (k = 1.5 by default); NaN
    padding is never inside."""
    q1, q3 = sorted_quantile(sorted_rows, 0.25, n), sorted_quantile(sorted_rows, 0.75, n)
    spread = multiplier * (q3 - q1)
    return (rows >= (q1 - spread)[:, None]) & (rows <= (q3 + spread)[:, None])
