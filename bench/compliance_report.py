"""Benchmark: the compliance report's SOX 404 section over 1,000,000 audit entries, ops store on
PostgreSQL (issue 7).

Target: the SOX report in under 5 s with 1,000,000 entries in the period.
Ours: `sox_report` (one GROUP BY pass over the period in the database, the report's tables summed
from its groups; approvals and the first failures read by id), then the section as the flow
builds it: `sox_report` followed by `chain_verification` (the chain over the period,
`verify_chain`); and `sox_report_with_chain`, the same two at once on separate connections.
Baseline: the straightforward way, every entry of the period loaded as an `AuditEntry` ORM object
(yield_per) and counted in Python. Ours and the baseline must agree on every count.
Then the detail file every SOX count expands to (issue 15), one CSV row per entry counted with its
flow run link: ours, `period_entries` (the chain walk's streamed tuples) through the report's CSV
writer; baseline, the same rows from `AuditEntry` ORM objects (yield_per) through csv.writer. Both
files must be identical.

    .venv/bin/python bench/compliance_report.py [--entries 1000000] [--rounds 3]
        [--server postgresql://postgres@127.0.0.1:5432] [--keep] [--skip-baseline]

The entries (~1 in 1,000 an approval, 1 in 17 failed, strategy versions, promotions and
rollbacks among them) are bulk-loaded with COPY as bench/audit.py does, into a database
`tradeops_bench_compliance`, dropped afterwards unless --keep; they all fall in January 2025.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from _common import median_seconds, ratio_line
from audit import _admin, load_entries
from sqlmodel import Session, select

from flows.compliance_report import chain_verification
from tasks.compliance.evidence import ENTRY_COLUMNS, EvidenceWriter, Provenance, chain_head, period_entries
from tasks.compliance.period import parse_period
from tasks.compliance.sox import APPROVAL_OPERATIONS, STRATEGY_OPERATIONS, sox_report, sox_report_with_chain
from tasks.reporting import flow_run_linker
from tradeops.store import AuditEntry, open_store
from tradeops.store.canonical import iso_timestamp

DATABASE = "tradeops_bench_compliance"
PERIOD = "2025-01"
OPERATIONS = ("config_apply", "experiment_create", "experiment_start", "deploy_strategy", "backup_daily",
              "health_check", "strategy_version", "strategy_promote", "strategy_rollback", "db_maintenance")


def sox_operation(n: int) -> str:
    return APPROVAL_OPERATIONS[0] if n % 1000 == 7 else OPERATIONS[n % len(OPERATIONS)]


def orm_counts(url: str, period) -> dict:  # noqa: ANN001
    """Baseline: every entry of the period as an ORM object, counted in Python."""
    by_operation, by_user, strategies = Counter(), Counter(), Counter()
    failed_operation, failed_user = Counter(), Counter()
    approvals, failed = [], []
    with Session(open_store(url)) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.timestamp >= period.start,
                                                     AuditEntry.timestamp < period.end)
                            .order_by(AuditEntry.id).execution_options(yield_per=20_000))
        for entry in rows:
            by_operation[entry.operation] += 1
            by_user[entry.user] += 1
            if not entry.success:
                failed_operation[entry.operation] += 1
                failed_user[entry.user] += 1
                failed.append(entry.id)
            elif entry.operation in STRATEGY_OPERATIONS:
                strategies[(entry.strategy_name, entry.operation)] += 1
            if entry.operation in APPROVAL_OPERATIONS:
                approvals.append(entry.id)
    return {"by_operation": dict(by_operation), "by_user": dict(by_user), "failed_by_operation": dict(failed_operation),
            "failed_by_user": dict(failed_user), "strategies": dict(strategies), "approvals": approvals,
            "first_failed": failed[:500]}


def counts_of(report) -> dict:  # noqa: ANN001
    """The report's numbers in orm_counts' shape, to compare."""
    return {"by_operation": {r["name"]: r["count"] for r in report.by_operation},
            "by_user": {r["name"]: r["count"] for r in report.by_user},
            "failed_by_operation": {r["name"]: r["failed"] for r in report.by_operation if r["failed"]},
            "failed_by_user": {r["name"]: r["failed"] for r in report.by_user if r["failed"]},
            "strategies": {(r["strategy"], r["operation"]): r["count"] for r in report.strategies_modified},
            "approvals": [a["id"] for a in report.approvals],
            "first_failed": [f["id"] for f in report.failed_operations]}


def flow_section(url: str, period):  # noqa: ANN001
    """What compliance-report does for SOX today: the counts, then the chain over the period."""
    report = sox_report(url, period)
    report.chain = chain_verification(url, period)
    return report


OURS_CSV = Path(tempfile.gettempdir()) / "sox-404-entries-tradeops-bench.csv"  # EvidenceWriter's name for it
BASELINE_CSV = Path(tempfile.gettempdir()) / "tradeops-bench-sox-entries-orm.csv"


def write_detail(url: str, period, head, path: Path) -> None:  # noqa: ANN001
    """What compliance-report writes: the period's entries up to the head, with their flow run links."""
    path.unlink(missing_ok=True)
    provenance = Provenance.of("bench", period, "bench", None, head, datetime(2025, 2, 1, tzinfo=timezone.utc))
    EvidenceWriter(path.parent, "tradeops-bench", provenance).csv("sox-404-entries", ENTRY_COLUMNS,
                                                                  period_entries(url, period, head.id))


def orm_detail(url: str, period, head, path: Path) -> None:  # noqa: ANN001
    """The same file from ORM objects."""
    link = flow_run_linker()
    provenance = Provenance.of("bench", period, "bench", None, head, datetime(2025, 2, 1, tzinfo=timezone.utc))
    with open(path, "w", newline="") as handle, Session(open_store(url)) as session:
        for label, statement in provenance.statements():
            handle.write(f"# {label}: {statement}\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ENTRY_COLUMNS)
        rows = session.exec(select(AuditEntry).where(AuditEntry.timestamp >= period.start,
                                                     AuditEntry.timestamp < period.end, AuditEntry.id <= head.id)
                            .order_by(AuditEntry.id).execution_options(yield_per=20_000))
        for e in rows:
            writer.writerow([e.id, iso_timestamp(e.timestamp.astimezone(timezone.utc)), e.operation, e.user,
                             e.success, e.strategy_name, e.version, e.repository_hash, e.flow_run_id,
                             link(e.flow_run_id), e.entry_hash])


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the (slow) ORM count")
    args = parser.parse_args()
    url, period = f"{args.server}/{DATABASE}", parse_period(PERIOD)
    _admin(args.server, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    _admin(args.server, f'CREATE DATABASE "{DATABASE}"')
    try:
        print(f"{os.cpu_count()} cores, {load_average()}")
        began = time.perf_counter()
        load_entries(url, args.entries, operation_of=sox_operation)
        print(f"loaded {args.entries} chained entries with COPY in {time.perf_counter() - began:.1f} s")
        return run(url, period, args)
    finally:
        if not args.keep:
            _admin(args.server, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def run(url: str, period, args: argparse.Namespace) -> int:  # noqa: ANN001
    reports, sections, concurrent = [], [], []
    counts = median_seconds(lambda: reports.append(sox_report(url, period)), args.rounds)
    section = median_seconds(lambda: sections.append(flow_section(url, period)), args.rounds)
    together = median_seconds(lambda: concurrent.append(
        sox_report_with_chain(url, period, lambda: chain_verification(url, period))), args.rounds)
    report = reports[-1]
    assert report.total == args.entries, report.total
    assert all(s.chain["intact"] and s.chain["entries_checked"] == args.entries for s in sections + concurrent)
    assert all(counts_of(r) == counts_of(report) for r in reports + sections + concurrent)
    print(f"sox_report (counts) over {report.total:,} entries ({report.failed:,} failed, {len(report.approvals)} "
          f"approvals): median {counts:.3f} s; {load_average()}")
    print(f"SOX section as the flow builds it (counts, then the chain over the period): median {section:.3f} s; "
          f"counts and chain at once (sox_report_with_chain): median {together:.3f} s; target < 5 s: "
          f"{'met' if section < 5 else 'met only at once' if together < 5 else 'MISSED'}; {load_average()}")
    head = chain_head(url)
    detail = median_seconds(lambda: write_detail(url, period, head, OURS_CSV), args.rounds)
    print(f"SOX detail file, {report.total:,} entries ({OURS_CSV.stat().st_size / 1e6:.0f} MB): median "
          f"{detail:.3f} s; {load_average()}")
    if args.skip_baseline:
        return 0
    baseline_detail = median_seconds(lambda: orm_detail(url, period, head, BASELINE_CSV), args.rounds)
    same = OURS_CSV.read_bytes() == BASELINE_CSV.read_bytes()
    print(ratio_line("SOX detail file", detail, "ORM rows written with csv.writer", baseline_detail, args.rounds)
          + f"; same bytes: {'yes' if same else 'NO'}; {load_average()}")
    if not same:
        return 1
    baseline_counts = []
    baseline = median_seconds(lambda: baseline_counts.append(orm_counts(url, period)), args.rounds)
    agree = all(c == counts_of(report) for c in baseline_counts)
    print(ratio_line(f"SOX counts, {report.total:,} entries", counts, "ORM rows counted in Python", baseline,
                     args.rounds) + f"; same counts: {'yes' if agree else 'NO'}; {load_average()}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
