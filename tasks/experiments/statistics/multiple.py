"""Holm's step-down correction across the metrics a decision consults (columns), per row."""

from __future__ import annotations

import numpy as np


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of each row of ``p_values`` (experiments x metrics); NaN (an
    undefined test) is left out of the family and stays NaN."""
    p = np.atleast_2d(np.asarray(p_values, dtype=float))
    order = np.argsort(np.where(np.isnan(p), np.inf, p), axis=1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=1)
    m = (~np.isnan(p)).sum(axis=1, keepdims=True)
    factor = m - np.arange(p.shape[1])[None, :]
    running = np.fmax.accumulate(ranked * factor, axis=1)  # NaNs sort last, so they never lead
    adjusted = np.where(np.isnan(ranked), np.nan, np.minimum(running, 1.0))
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=1)
    return out
