"""One slice of a parallel chain walk on PostgreSQL, run as `python -m tasks.audit.chunk_walk`.

A million entries take ~6.5 s to stream and hash in one process (half fetching, half hashing, one
CPU); `verify_chain` splits the id range into slices, one process each, all reading the same
exported snapshot so they see exactly the rows the parent sees. Each slice knows the hash its first
row must link to (the parent reads it), so slices chain together exactly as one walk would.
The job comes on stdin (the URL may hold a password), the WalkResult goes to stdout, as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import psycopg2

from tasks.audit.chain import walk

FETCH_ROWS = 20_000


def walk_slice(dsn: str, snapshot: str, select_sql: str, low: int, high: int, expected_link: str) -> dict:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
        with connection.cursor(name="tradeops_audit_slice") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(select_sql, {"low": low, "high": high})
            return asdict(walk(_stream(cursor), expected_link))
    finally:
        connection.close()


def _stream(cursor):  # noqa: ANN001, ANN202
    while batch := cursor.fetchmany(FETCH_ROWS):
        yield from batch


def main() -> int:
    job = json.load(sys.stdin)
    json.dump(walk_slice(**job), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
