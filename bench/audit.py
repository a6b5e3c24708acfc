"""Benchmark: the audit trail on a PostgreSQL ops store (issue 7).

Targets: verify 1,000,000 chained entries in under 5 s; append 2,000 entries/s or more with 8
concurrent writers, without forking the chain.

Verification, ours: `verify_chain` (server-side cursor, rows as tuples, `canonical_from_row`).
Baseline: the straightforward walk — `AuditEntry` ORM objects in id order (yield_per), each
hashed with `canonical_audit_content` and its link checked, the way `check_audit_export` checks an
exported copy. Both do the same checks on the same rows and hash the same bytes.
Appends, ours: `append_audit` from 8 writer processes at once (tests/audit_writers.py), on the
1,000,000-entry chain. Baseline: the straightforward ORM append (`orm_append`: a Session, the same
advisory lock, the head through the ORM, an `AuditEntry`, a synchronous COMMIT), also 8 writers;
rounds alternate between the two so both see the same machine load. Then `append_audit` from 1
writer (its latency: one durable append at a time), and the whole chain is verified and checked
for forks (no two entries with the same prev_hash). The load average and the share of CPU time
the hypervisor stole during each measurement are printed: on a shared 2-core VM, appends per
second follow them.

    .venv/bin/python bench/audit.py [--entries 1000000] [--rounds 3] [--appends 2000]
                                    [--server postgresql://postgres@127.0.0.1:5432] [--keep]
                                    [--skip-baseline] [--skip-verify]

The entries are bulk-loaded with COPY into a database `tradeops_bench_audit` (hashed by
`canonical_audit_content` itself), dropped afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
from _common import host_cpu_counters, median_seconds, ratio_line, stolen_share

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from audit_writers import run_writers  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from tasks.audit import verify_chain  # noqa: E402
from tradeops.store import AuditEntry, open_store, session_for  # noqa: E402
from tradeops.store.records import GENESIS_HASH, canonical_audit_content, current_flow_run_id  # noqa: E402

DATABASE = "tradeops_bench_audit"
COPY_COLUMNS = ('"timestamp"', "operation", '"user"', "strategy_name", "version", "repository_hash",
                "execution_time_ms", "success", "changed_files", "compliance_flags", "details", "flow_run_id",
                "prev_hash", "entry_hash")
OPERATIONS = ("config_apply", "experiment_create", "experiment_start", "deploy_strategy", "backup_daily")


class _Entry:
    """What canonical_audit_content reads, without an ORM object per generated entry."""

    __slots__ = ("timestamp", "operation", "user", "strategy_name", "version", "repository_hash",
                 "execution_time_ms", "success", "changed_files", "compliance_flags", "details",
                 "flow_run_id", "prev_hash", "entry_hash")


def rotating_operation(n: int) -> str:
    return OPERATIONS[n % len(OPERATIONS)]


def generated_entries(count: int, operation_of=rotating_operation):  # noqa: ANN001
    """`count` chained entries, realistic in size (~500 bytes of content), hashed canonically."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    previous = GENESIS_HASH
    for n in range(count):
        entry = _Entry()
        entry.timestamp = start + timedelta(milliseconds=40 * n)
        entry.operation = operation_of(n)
        entry.user = f"user{n % 37}"
        entry.strategy_name = f"momentum-{n % 11}" if n % 3 else None
        entry.version = f"1.{n % 50}.{n % 7}" if n % 3 else None
        entry.repository_hash = hashlib.sha1(str(n).encode()).hexdigest() if n % 3 else None
        entry.execution_time_ms = n % 9000 if n % 2 else None
        entry.success = n % 17 != 0
        entry.changed_files = json.dumps([f"strategies/s{n % 11}.py", "config/risk.yaml"][: n % 3])
        entry.compliance_flags = json.dumps({"sox": True, "four_eyes": n % 5 == 0}, sort_keys=True)
        entry.details = json.dumps({"environment": "production", "experiment": f"exp-{n % 997}",
                                    "note": "capital 5% — ok", "n": n}, sort_keys=True)
        entry.flow_run_id = f"{n:08x}-0000-4000-8000-000000000000" if n % 4 else None
        entry.prev_hash = previous
        entry.entry_hash = previous = hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest()
        yield entry


def _copy_value(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def load_entries(url: str, count: int, batch: int = 100_000, operation_of=rotating_operation) -> None:  # noqa: ANN001
    open_store(url)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE audit_entry RESTART IDENTITY")
        buffer = io.StringIO()
        for n, entry in enumerate(generated_entries(count, operation_of), start=1):
            buffer.write("\t".join(_copy_value(getattr(entry, c.strip('"'))) for c in COPY_COLUMNS) + "\n")
            if n % batch == 0 or n == count:
                buffer.seek(0)
                cur.copy_expert(f"COPY audit_entry ({', '.join(COPY_COLUMNS)}) FROM STDIN", buffer)
                buffer = io.StringIO()
    # A settled table, as a long-lived trail is: visibility hints set, statistics fresh.
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) audit_entry")
    conn.close()


def orm_walk(url: str) -> int:
    """Baseline: one AuditEntry per row, canonical_audit_content, link check."""
    previous, count = GENESIS_HASH, 0
    with Session(open_store(url)) as session:
        for entry in session.exec(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=20_000)):
            if entry.prev_hash != previous:
                raise AssertionError(f"entry id {entry.id} does not link")
            if hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest() != entry.entry_hash:
                raise AssertionError(f"entry id {entry.id} does not match its hash")
            previous, count = entry.entry_hash, count + 1
    return count


def orm_append(url: str, operation: str, user: str, *, details: dict | None = None) -> AuditEntry:
    """Baseline append: the ORM way, the lock held through the synchronous COMMIT's disk flush."""
    with session_for(url) as session:
        session.connection().exec_driver_sql("SELECT pg_advisory_xact_lock(7415001)")
        head = session.exec(select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)).first()
        entry = AuditEntry(operation=operation, user=user, details=json.dumps(details or {}, sort_keys=True),
                           flow_run_id=current_flow_run_id(), prev_hash=head or GENESIS_HASH)
        entry.entry_hash = hashlib.sha256(canonical_audit_content(entry).encode()).hexdigest()
        session.add(entry)
        session.commit()
    return entry


def appends_per_second(url: str, writers: int, appends: int, append=None) -> float:  # noqa: ANN001
    run = run_writers(url, writers, max(appends // writers, 1), append=append)
    return run.per_second


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def forks(url: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) - count(DISTINCT prev_hash) FROM audit_entry")
        return cur.fetchone()[0]


def _admin(server: str, sql: str) -> None:
    conn = psycopg2.connect(f"{server}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--appends", type=int, default=2000, help="appends per writer-count round (total)")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the (slow) ORM walk and ORM appends")
    parser.add_argument("--skip-verify", action="store_true", help="appends only")
    args = parser.parse_args()
    url = f"{args.server}/{DATABASE}"
    _admin(args.server, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    _admin(args.server, f'CREATE DATABASE "{DATABASE}"')
    try:
        print(f"{os.cpu_count()} cores, {load_average()}")
        began = time.perf_counter()
        load_entries(url, args.entries)
        print(f"loaded {args.entries} chained entries with COPY in {time.perf_counter() - began:.1f} s")
        if not args.skip_verify:
            bench_verify(url, args)
        bench_appends(url, args)
        final = verify_chain(url)
        fork_count = forks(url)
        print(f"after the appends: {final.summary()}; forks: {fork_count}; {load_average()}")
        return 0 if final.intact and fork_count == 0 else 1
    finally:
        if not args.keep:
            _admin(args.server, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def bench_verify(url: str, args: argparse.Namespace) -> None:
    reports = []
    counters = host_cpu_counters()
    ours = median_seconds(lambda: reports.append(verify_chain(url)), args.rounds)
    stolen = stolen_share(counters, host_cpu_counters())
    assert all(r.intact and r.entries_checked == args.entries for r in reports), reports[-1].summary()
    print(f"verify_chain: {args.entries} entries, median {ours:.3f} s "
          f"({args.entries / ours:,.0f} entries/s; target < 5 s: {'met' if ours < 5 else 'MISSED'}; {stolen}; {load_average()})")
    if not args.skip_baseline:
        baseline = median_seconds(lambda: orm_walk(url), args.rounds)
        print(ratio_line(f"chain verification, {args.entries} entries", ours,
                         "ORM walk (AuditEntry + canonical_audit_content)", baseline, args.rounds))


def bench_appends(url: str, args: argparse.Namespace) -> None:
    """8 writers, ours and the ORM baseline in alternating rounds; then ours from 1 writer."""
    ours, baseline = [], []
    for _ in range(args.rounds):
        counters = host_cpu_counters()
        ours.append(appends_per_second(url, 8, args.appends))
        stolen = stolen_share(counters, host_cpu_counters())
        if not args.skip_baseline:
            baseline.append(appends_per_second(url, 8, args.appends, orm_append))
        print(f"  round: 8 writers x {args.appends // 8}: append_audit {ours[-1]:,.0f}/s ({stolen})"
              + (f", ORM append {baseline[-1]:,.0f}/s" if baseline else "") + f"; {load_average()}")
    single = statistics.median(appends_per_second(url, 1, args.appends // 4) for _ in range(args.rounds))
    rate = statistics.median(ours)
    print(f"appends/s (median of {args.rounds}), 8 writers: append_audit {rate:,.0f}"
          + (f", ORM append {statistics.median(baseline):,.0f}, ratio {rate / statistics.median(baseline):.2f}x"
             if baseline else "")
          + f"; 1 writer: append_audit {single:,.0f}; target >= 2,000/s with 8 writers: "
          + ("met" if rate >= 2000 else "MISSED"))


if __name__ == "__main__":
    raise SystemExit(main())
