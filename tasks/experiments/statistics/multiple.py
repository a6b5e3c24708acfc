"""Multiple-testing corrections, per row of p-values (experiments x tests).

Holm's step-down keeps the family-wise error (the chance of any false finding) at alpha;
Benjamini-Hochberg keeps the expected share of false findings among the findings (FDR) at
alpha and gives more findings when many tests are run (several variants of one strategy).
A family must hold p-values of one kind: always-valid p-values (valid at every daily look)
are corrected only with each other, fixed-horizon ones only with each other.
NaN (an undefined test) is left out of the family and stays NaN.
"""

from __future__ import annotations

import numpy as np


def _ranked(p_values):
    p = np.atleast_2d(np.asarray(p_values, dtype=float))
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=1, kind="stable")
    return p, order, np.take_along_axis(p, order, axis=1), (~np.isnan(p)).sum(axis=1, keepdims=True)


def _unrank(p, order, adjusted):
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=1)
    return out


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of each row."""
    p, order, ranked, m = _ranked(p_values)
    factor = m - np.arange(p.shape[1])[None, :]
    running = np.fmax.accumulate(ranked * factor, axis=1)  # NaNs sort last, so they never lead
    return _unrank(p, order, np.where(np.isnan(ranked), np.nan, np.minimum(running, 1.0)))


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of each row."""
    p, order, ranked, m = _ranked(p_values)
    rank = np.arange(1, p.shape[1] + 1)[None, :]
    scaled = np.where(np.isnan(ranked), np.inf, ranked * m / rank)
    running = np.minimum.accumulate(scaled[:, ::-1], axis=1)[:, ::-1]  # min over this rank and above
    return _unrank(p, order, np.where(np.isnan(ranked), np.nan, np.minimum(running, 1.0)))


CORRECTIONS = {"holm": holm, "benjamini-hochberg": benjamini_hochberg}


def adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    return CORRECTIONS[method](p_values)
