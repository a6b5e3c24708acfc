"""Benchmark: performance baselines over 30 days of run history (issue 19).

The rows: 100,000 durations (default) over 200 operations with lognormal latencies, as 30 days of
flow, task and request history would give. Ours: `tasks.performance.percentiles.grouped_percentiles`
(one lexsort, then each quantile for all groups at once by index arithmetic, mean and sigma with
`np.add.reduceat`). Baselines: a pandas groupby-quantile (p50/p95/p99) plus mean and std of the
same DataFrame, and a numpy loop (`np.percentile`, mean, std per operation after a boolean mask).
All three give the same numbers (checked before timing).

    .venv/bin/python bench/baselines.py [--rows 100000] [--operations 200] [--rounds 15]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _common import median_seconds, ratio_line
from tasks.performance.percentiles import grouped_percentiles


def pandas_groupby(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby("operation")["seconds"]
    quantiles = grouped.quantile([0.5, 0.95, 0.99]).unstack()
    return quantiles.assign(mean=grouped.mean(), std=grouped.std(ddof=0))


def numpy_loop(operations: np.ndarray, seconds: np.ndarray) -> dict[str, tuple]:
    found = {}
    for name in np.unique(operations):
        mine = seconds[operations == name]
        found[name] = (*np.percentile(mine, [50, 95, 99]), mine.mean(), mine.std())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(19)
    names = np.array([f"flow-{i}/task" for i in range(args.operations)])
    operations = names[rng.zipf(1.3, size=args.rows) % args.operations]  # a few operations dominate, as in life
    seconds = rng.lognormal(-1.0, 0.8, size=args.rows)
    frame = pd.DataFrame({"operation": operations, "seconds": seconds})

    ours = grouped_percentiles(operations, seconds)
    theirs = pandas_groupby(frame)
    looped = numpy_loop(operations, seconds)
    for i, name in enumerate(ours.names):
        row = [*ours.percentiles[i], ours.means[i], ours.stddevs[i]]
        assert np.allclose(row, theirs.loc[name].to_numpy(), rtol=1e-12), name
        assert np.allclose(row, looped[name], rtol=1e-12), name

    mine = median_seconds(lambda: grouped_percentiles(operations, seconds), args.rounds)
    pandas_time = median_seconds(lambda: pandas_groupby(frame), args.rounds)
    loop_time = median_seconds(lambda: numpy_loop(operations, seconds), args.rounds)
    print(f"{args.rows:,} durations, {len(ours.names)} operations; the same p50/p95/p99/mean/sigma from all three")
    print(ratio_line("p50/p95/p99 + mean + sigma per operation", mine, "pandas groupby-quantile", pandas_time,
                     args.rounds))
    print(ratio_line("p50/p95/p99 + mean + sigma per operation", mine, "numpy loop per operation", loop_time,
                     args.rounds))


if __name__ == "__main__":
    main()
