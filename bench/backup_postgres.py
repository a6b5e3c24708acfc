"""Benchmark: our PostgreSQL backup of the `large` sandbox database vs the runbook recipe.

Runbook 000 backup-experiment-data.sh: `pg_dump db | gzip > file`. Ours: `pg_dump` on an
exported snapshot with per-table row counts from the same snapshot, the active-experiments CSV,
a `pg_restore --list` read-back, fsync and rename, then SHA-256 and size; in the format the
`dump_jobs` rule picks for this machine (parallel directory format, packed in a tar, where it
pays), and once more forced to one custom-format file. The floor is bare `pg_dump -Fc -f file`.
Targets (issue 3): no slower than the recipe; within 10% of the floor.

    .venv/bin/python bench/backup_postgres.py [--rounds 3] [--server postgresql://postgres@127.0.0.1:5432] [--keep]

The large sandbox database (>= 1 GB) is built once as `tradeops_bench_large` (about 2 minutes)
and dropped afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import psycopg2
from _common import median_seconds, ratio_line

from tasks.backup.postgres import artifact_facts, dump_postgres
from tradeops.sandbox import create_sandbox

DATABASE = "tradeops_bench_large"


def ensure_large_sandbox(server: str, workdir: Path) -> str:
    url = f"{server}/{DATABASE}"
    try:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT scale FROM tradeops_sandbox")
            if cur.fetchone()[0] == "large":
                return url
    except psycopg2.Error:
        pass
    create_sandbox(workdir / "sandbox", url, "large")
    return url


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        url = ensure_large_sandbox(args.server, out)
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            size = cur.fetchone()[0]
        counter = iter(range(1000))

        chosen = {}

        def ours(jobs=None):
            n = next(counter)
            chosen.update(dump_postgres(url, out / f"ours-{n}.dump", out / f"ours-{n}.csv", jobs=jobs))
            artifact_facts(out / f"ours-{n}.dump")
            (out / f"ours-{n}.dump").unlink()

        def ours_custom():
            ours(jobs=1)

        def recipe():
            subprocess.run(f"pg_dump '{url}' | gzip > '{out}/recipe.sql.gz'", shell=True, check=True)

        def floor():
            subprocess.run(["pg_dump", "-Fc", "-f", str(out / "floor.dump"), url], check=True)

        ours_s = median_seconds(ours, args.rounds)
        auto = f"{chosen['format']} format, {chosen['jobs']} job(s)"
        custom_s = median_seconds(ours_custom, args.rounds)
        recipe_s = median_seconds(recipe, args.rounds)
        floor_s = median_seconds(floor, args.rounds)
        sizes = {p.name: p.stat().st_size for p in (out / "recipe.sql.gz", out / "floor.dump")}
    if not args.keep:
        admin = psycopg2.connect(f"{args.server}/postgres")
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    print(f"database {size / 2**30:.2f} GiB; output bytes: {sizes}")
    print(ratio_line(f"PostgreSQL backup ({auto})", ours_s, "pg_dump | gzip (runbook)", recipe_s, args.rounds))
    print(ratio_line("PostgreSQL backup (custom format, 1 job)", custom_s, "pg_dump | gzip (runbook)", recipe_s,
                     args.rounds))
    print(f"vs the floor (pg_dump -Fc alone, {floor_s:.3f} s): {auto} {100 * (ours_s / floor_s - 1):+.1f}%, "
          f"custom format {100 * (custom_s / floor_s - 1):+.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
