"""Benchmark: log compression (tasks/logs/compression.py) vs the runbooks' `gzip` recipe.

The baseline is runbook 003's log-rotation.sh (`gzip $LOG_DIR/$log.$DATE`, i.e. `gzip -6`), run
here as `gzip -6 -c FILE > FILE.gz` on the same files. Ours does everything the flow does per
file: cut into members, compress them on every core, check each member by decompressing it,
index the time ranges, fsync and hash the archive. Same files, one process; medians of N rounds
of the whole set; throughput (MiB of logs per second) and compressed size for both.

    .venv/bin/python bench/log_archival.py [--scale medium] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median_seconds, ratio_line  # noqa: E402
from tasks.logs.compression import compress_log  # noqa: E402
from tradeops.sandbox.dataset import strategy_names  # noqa: E402
from tradeops.sandbox.logs import create_logs  # noqa: E402
from tradeops.sandbox.scales import SCALES  # noqa: E402

MIB = 1024 * 1024


def ours(files: list[Path], out: Path) -> int:
    return sum(compress_log(f, out / f"{f.name}.gz").archive_bytes for f in files)


def gzip_recipe(files: list[Path], out: Path) -> int:
    total = 0
    for f in files:
        target = out / f"{f.name}.gz"
        with open(target, "wb") as handle:
            subprocess.run(["gzip", "-6", "-c", str(f)], stdout=handle, check=True)
        total += target.stat().st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="medium", choices=sorted(SCALES))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scale = SCALES[args.scale]
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        logs, out_ours, out_gzip = Path(tmp, "logs"), Path(tmp, "ours"), Path(tmp, "gzip")
        for folder in (out_ours, out_gzip):
            folder.mkdir()
        create_logs(logs, scale, 7, datetime.now(timezone.utc), strategy_names(scale.strategies))
        files = sorted(logs.glob("*.log"))
        size = sum(f.stat().st_size for f in files)
        big = [f for f in files if f.stat().st_size > 10 * MIB]
        print(f"{len(files)} log files, {size / MIB:.1f} MiB ({len(big)} over 10 MiB); {os.cpu_count()} cores; "
              f"{args.scale} sandbox scale")
        for label, subset in (("all files", files), ("files over 10 MiB", big)):
            subset_size = sum(f.stat().st_size for f in subset)
            t_ours = median_seconds(lambda: ours(subset, out_ours), args.rounds)
            t_gzip = median_seconds(lambda: gzip_recipe(subset, out_gzip), args.rounds)
            size_ours, size_gzip = ours(subset, out_ours), gzip_recipe(subset, out_gzip)
            print(ratio_line(f"compress {label}", t_ours, "gzip -6", t_gzip, args.rounds))
            print(f"  throughput: tradeops {subset_size / MIB / t_ours:.1f} MiB/s, gzip -6 "
                  f"{subset_size / MIB / t_gzip:.1f} MiB/s; compressed size: tradeops {size_ours / subset_size:.4f}, "
                  f"gzip -6 {size_gzip / subset_size:.4f} of the original "
                  f"({100 * (size_ours / size_gzip - 1):+.2f}%)")


if __name__ == "__main__":
    main()
