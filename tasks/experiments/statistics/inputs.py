"""Input checks: bad PnL or a bad split fails loudly, naming the problem, before any statistic."""

from __future__ import annotations

import numbers
from decimal import Decimal

import numpy as np


class ExperimentInputError(ValueError):
    """Raised for unusable experiment input (empty group, NaN/inf, non-numeric, bad split)."""


def pnl_array(values, name: str) -> np.ndarray:
    """One group's per-trade PnL as a finite float64 vector (Decimals from PostgreSQL accepted)."""
    if values is None:
        raise ExperimentInputError(f"{name} is missing (None)")
    raw = np.asarray(values)
    if raw.dtype.kind == "O":
        bad = [v for v in raw.ravel() if isinstance(v, bool) or not isinstance(v, (numbers.Real, Decimal))]
        if bad:
            raise ExperimentInputError(f"{name} contains non-numeric values, e.g. {bad[0]!r}")
        raw = raw.astype(float)
    elif raw.dtype.kind not in "iuf":
        raise ExperimentInputError(f"{name} must be numeric PnL, got dtype {raw.dtype} (e.g. {raw.ravel()[:1]!r})")
    if raw.ndim != 1:
        raise ExperimentInputError(f"{name} must be one-dimensional, got shape {raw.shape}")
    if raw.size == 0:
        raise ExperimentInputError(f"{name} is empty: no trades in this group")
    return _finite(raw.astype(np.float64), name)


def pnl_matrix(values, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A batch group: experiments along axis 0, that group's trades along axis 1.

    Either a 2-D array (every experiment has the same number of trades) or a sequence of 1-D
    arrays, one per experiment, of any lengths. Returns the values (rows padded with NaN to the
    longest) and the mask of real trades (None when no row is padded)."""
    if isinstance(values, np.ndarray) or (isinstance(values, (list, tuple)) and values
                                          and not isinstance(values[0], (list, tuple, np.ndarray))):
        raw = np.asarray(values)
        if raw.dtype.kind not in "iuf":
            raise ExperimentInputError(f"{name} must be a numeric array, got dtype {raw.dtype}")
        if raw.ndim != 2 or raw.shape[0] == 0 or raw.shape[1] == 0:
            raise ExperimentInputError(f"{name} must be a non-empty 2-D array (experiments x trades) or a "
                                       f"sequence of 1-D arrays, got shape {raw.shape}")
        return _finite(raw.astype(np.float64), name), None
    rows = list(values) if values is not None else []
    if not rows:
        raise ExperimentInputError(f"{name} is empty: no experiments")
    arrays = [pnl_array(row, f"{name}[{i}]") for i, row in enumerate(rows)]
    lengths = np.array([a.size for a in arrays])
    if (lengths == lengths[0]).all():
        return np.vstack(arrays), None
    padded = np.full((len(arrays), int(lengths.max())), np.nan)
    valid = np.arange(padded.shape[1])[None, :] < lengths[:, None]
    padded[valid] = np.concatenate(arrays)
    return padded, valid


def covariate_matrix(values, pnl: np.ndarray, valid: np.ndarray | None, name: str) -> np.ndarray | None:
    """Each trade's pre-period PnL (the CUPED covariate), shaped like its group's PnL, or None."""
    if values is None:
        return None
    matrix, mask = pnl_matrix(values, name)
    if matrix.shape != pnl.shape or (mask is None) != (valid is None) or (mask is not None and (mask != valid).any()):
        raise ExperimentInputError(f"{name} must have one value per trade (shape {pnl.shape}), got {matrix.shape}")
    return matrix


def _finite(arr: np.ndarray, name: str) -> np.ndarray:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist()
        raise ExperimentInputError(f"{name} contains {int(bad.sum())} non-finite values (NaN/inf), first at {where}")
    return arr


def split_fractions(split) -> tuple[float, float]:
    """(control, variant) fractions from a split like (90, 10) or "90/10"; must sum to 100."""
    if isinstance(split, str):
        parts = split.split("/")
        try:
            split = tuple(float(p) for p in parts)
        except ValueError:
            raise ExperimentInputError(f"split {split!r} is not of the form 'control/variant', e.g. '90/10'") from None
    try:
        control, variant = (float(p) for p in split)
    except (TypeError, ValueError):
        raise ExperimentInputError(f"split {split!r} must be two numbers (control, variant), e.g. (90, 10)") from None
    if not (np.isfinite(control) and np.isfinite(variant)) or control <= 0 or variant <= 0:
        raise ExperimentInputError(f"split {split!r}: both parts must be positive")
    if abs(control + variant - 100.0) > 1e-9:
        raise ExperimentInputError(f"split {split!r} must sum to 100, it sums to {control + variant:g}")
    return control / 100.0, variant / 100.0


def timestamps_array(ts, pnl: np.ndarray, name: str) -> np.ndarray | None:
    """Trade times as int64 nanoseconds (or None); must match the PnL length."""
    if ts is None:
        return None
    arr = np.asarray(ts)
    if arr.dtype.kind == "O":
        try:
            arr = np.asarray(arr.tolist(), dtype="datetime64[ns]")
        except (TypeError, ValueError):
            raise ExperimentInputError(f"{name} must be datetimes or numbers") from None
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[ns]").astype(np.int64)
    elif arr.dtype.kind not in "iuf":
        raise ExperimentInputError(f"{name} must be datetimes or numbers, got dtype {arr.dtype}")
    if arr.shape != pnl.shape:
        raise ExperimentInputError(f"{name} has {arr.size} entries but the PnL has {pnl.size}")
    return arr
