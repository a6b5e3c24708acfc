"""The correlation matrix of hourly returns, and runbook 001's validation criteria."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MIN_POINTS = 100  # runbook 001: minimum 100 data points per pair
MAX_DRIFT = 0.15  # runbook 001: maximum drift 15% from baseline (absolute change of a correlation)
FLAG_ABOVE = 0.7  # |correlation| from which a pair is flagged (no runbook gives one: our choice)
TOLERANCE = 1e-9  # floating-point slack of the exact checks (symmetry, diagonal, range)
PSD_TOLERANCE = 1e-10  # smallest eigenvalue allowed below zero


@dataclass
class CorrelationMatrix:
    strategies: list[str]
    values: np.ndarray  # (n, n)
    points: np.ndarray  # (n, n): hours both strategies traded
    excluded: dict[str, str] = field(default_factory=dict)  # strategy -> why it is not in the matrix

    def to_json(self) -> dict:
        return {"strategies": self.strategies, "matrix": self.values.tolist(), "points": self.points.tolist(),
                "excluded": self.excluded}

    @classmethod
    def from_json(cls, data: dict) -> "CorrelationMatrix":
        return cls(list(data["strategies"]), np.array(data["matrix"], dtype=float),
                   np.array(data["points"], dtype=int), dict(data.get("excluded", {})))

    def pairs(self) -> list[tuple[str, str, float, int]]:
        n = len(self.strategies)
        return [(self.strategies[i], self.strategies[j], float(self.values[i, j]), int(self.points[i, j]))
                for i in range(n) for j in range(i + 1, n)]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def correlation_matrix(returns: pd.DataFrame, min_points: int = MIN_POINTS) -> CorrelationMatrix:
    """Pearson correlation of every pair over the hours both traded (pairwise complete). A strategy
    with fewer than `min_points` hours of its own cannot meet the rule with anyone: it is excluded
    and named, so one new strategy does not block the others' matrix."""
    counts = returns.notna().sum() if not returns.empty else pd.Series(dtype=int)
    excluded = {name: f"{int(n)} hourly returns, fewer than {min_points}" for name, n in counts.items()
                if n < min_points}
    kept = returns[[c for c in returns.columns if c not in excluded]] if not returns.empty else returns
    present = kept.notna().to_numpy(dtype=float)
    return CorrelationMatrix([str(c) for c in kept.columns], kept.corr(method="pearson", min_periods=2).to_numpy(),
                             (present.T @ present).astype(int), excluded)


def validate(candidate: CorrelationMatrix, live: CorrelationMatrix | None, min_points: int = MIN_POINTS,
             max_drift: float = MAX_DRIFT) -> list[Check]:
    """Runbook 001's criteria, each a Check."""
    c, n = candidate.values, len(candidate.strategies)
    if n < 2:
        return [Check("strategies", False, f"{n} strategy with enough returns: no pair to correlate")]
    checks = []
    finite = bool(np.isfinite(c).all())
    checks.append(Check("defined", finite, "every correlation defined" if finite
                        else "some correlation undefined (a constant series or no overlap)"))
    c = np.nan_to_num(c, nan=0.0)
    asym = float(np.max(np.abs(c - c.T)))
    checks.append(Check("symmetric", asym <= TOLERANCE, f"max |C - Cᵀ| = {asym:.2e}"))
    diag = float(np.max(np.abs(np.diag(c) - 1.0)))
    checks.append(Check("unit diagonal", diag <= TOLERANCE, f"max |diag - 1| = {diag:.2e}"))
    low, high = float(c.min()), float(c.max())
    checks.append(Check("range [-1, 1]", low >= -1 - TOLERANCE and high <= 1 + TOLERANCE,
                        f"values in [{low:.4f}, {high:.4f}]"))
    smallest = float(np.linalg.eigvalsh((c + c.T) / 2).min())
    checks.append(Check("positive semi-definite", smallest >= -PSD_TOLERANCE, f"smallest eigenvalue {smallest:.3e}"))
    fewest = min((p[3] for p in candidate.pairs()), default=0)
    short = [f"{a}/{b} ({k})" for a, b, _, k in candidate.pairs() if k < min_points]
    checks.append(Check(f"≥ {min_points} points per pair", not short,
                        f"fewest {fewest}" + (f"; short: {', '.join(short)}" if short else "")))
    checks.append(drift_check(candidate, live, max_drift))
    return checks


def drift(candidate: CorrelationMatrix, live: CorrelationMatrix) -> tuple[float, str | None]:
    """The largest absolute change of a pair both matrices hold, and that pair."""
    index = {name: i for i, name in enumerate(live.strategies)}
    worst, where = 0.0, None
    for a, b, value, _ in candidate.pairs():
        if a in index and b in index:
            change = abs(value - float(live.values[index[a], index[b]]))
            if change > worst:
                worst, where = change, f"{a}/{b}"
    return worst, where


def drift_check(candidate: CorrelationMatrix, live: CorrelationMatrix | None, max_drift: float) -> Check:
    name = f"drift ≤ {max_drift:.0%}"
    if live is None:
        return Check(name, True, "no live matrix yet: the first version")
    worst, where = drift(candidate, live)
    return Check(name, worst <= max_drift, f"largest change {worst:.3f}" + (f" ({where})" if where else ""))


def flagged_pairs(matrix: CorrelationMatrix, above: float = FLAG_ABOVE) -> list[tuple[str, str, float, int]]:
    return sorted((p for p in matrix.pairs() if abs(p[2]) >= above), key=lambda p: -abs(p[2]))
