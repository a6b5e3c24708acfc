"""Per-group sample moments along axis 1 (experiments along axis 0): one pass feeds every test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupMoments:
    """Arrays of shape (experiments,). ``var`` has ddof=1; skewness and kurtosis are the biased
    sample moments scipy reports by default, kurtosis ordinary (Pearson, normal = 3), not excess."""

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    skewness: np.ndarray
    kurtosis: np.ndarray
    wins: np.ndarray  # trades with PnL > 0

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.var)


def group_moments(x: np.ndarray, keep: np.ndarray | None = None) -> GroupMoments:
    """Moments of each row of ``x``, optionally only over ``keep`` (same shape, bool)."""
    if keep is None:
        n = np.full(x.shape[0], float(x.shape[1]))
        total = x.sum(axis=1)
    else:
        n = keep.sum(axis=1).astype(float)
        total = np.where(keep, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        dev = x - mean[:, None]
        if keep is not None:
            dev = np.where(keep, dev, 0.0)
        dev2 = dev * dev
        m2 = dev2.sum(axis=1) / n
        m3 = (dev2 * dev).sum(axis=1) / n
        m4 = (dev2 * dev2).sum(axis=1) / n
        # scipy's rule: a second moment at rounding level of the mean is zero variance
        constant = m2 <= (np.finfo(float).resolution * 10 * mean) ** 2
        m2 = np.where(constant, 0.0, m2)
        var = np.where(n > 1, m2 * n / (n - 1), np.nan)
        skewness = np.where(constant, np.nan, m3 / m2**1.5)
        kurtosis = np.where(constant, np.nan, m4 / m2**2)
    wins = ((x > 0) if keep is None else ((x > 0) & keep)).sum(axis=1).astype(float)
    return GroupMoments(n, mean, var, skewness, kurtosis, wins)
