"""Benchmark: the health checks (plain functions) vs the runbooks' shell health-check recipe.

The baseline is runbook 003's daily-health-check.sh / 004's morning checklist: `df`, `free`,
`openssl x509 -noout -enddate` per certificate, `psql -c "SELECT max(ts) ..."` for freshness.
Both run against the same small sandbox in one process; medians of N rounds and the ratio print.

    .venv/bin/python bench/health_checks.py [--rounds 15] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2  # noqa: E402

from tasks.health import (  # noqa: E402
    HEALTH_THRESHOLDS as T, check_certificates, check_database, check_disk_free, check_memory,
    check_newest_log,
)
from tradeops.sandbox import create_sandbox  # noqa: E402


def ours(platform) -> None:
    check_database("platform", platform.database_url, "platform", T, "SELECT 1", "regime_history", "ts")
    check_disk_free(str(platform.directory), T["disk_free_pct"])
    check_memory(T["memory_used_pct"])
    check_certificates([str(p) for p in sorted(platform.certs_dir.glob("*.pem"))], [],
                       T["certificate_days_left"])
    check_newest_log("platform", str(platform.logs_dir), "*.log", T["newest_log_age_minutes"])


def runbook_recipe(platform) -> None:
    certs = " ".join(str(p) for p in sorted(platform.certs_dir.glob("*.pem")))
    script = f"""
        psql '{platform.database_url}' -Atc 'SELECT max(ts) FROM regime_history' >/dev/null
        df -h {platform.directory} >/dev/null
        free -h >/dev/null
        for c in {certs}; do openssl x509 -in "$c" -noout -enddate >/dev/null; done
        ls -t {platform.logs_dir}/*.log | head -1 >/dev/null
    """
    subprocess.run(["bash", "-c", script], check=True)


def median_seconds(fn, platform, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(platform)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    name = f"tradeops_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{args.server}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            platform = create_sandbox(Path(tmp) / "sandbox", f"{args.server}/{name}", "small")
            ours(platform), runbook_recipe(platform)  # warm up both
            ours_s = median_seconds(ours, platform, args.rounds)
            recipe_s = median_seconds(runbook_recipe, platform, args.rounds)
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"health checks, median of {args.rounds}: tradeops {ours_s * 1000:.1f} ms, "
          f"runbook shell recipe {recipe_s * 1000:.1f} ms, ratio {recipe_s / ours_s:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
