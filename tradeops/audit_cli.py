"""`tradeops audit verify`: recompute the environment's audit chain and name its first break.

Exit 0 when the chain (or the window) holds, 1 when it does not, with the entry at fault named
on stderr (and in the JSON object with --json); 2 for usage errors, as every tradeops command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tradeops.errors import UsageError


def add_audit_parser(sub: Any, parser_class: type) -> None:
    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    commands = audit.add_subparsers(dest="audit_command", required=True, parser_class=parser_class)
    verify = commands.add_parser("verify", help="recompute the hash chain; report the first entry that was "
                                                "modified, deleted, inserted or reordered")
    verify.add_argument("--from", dest="start", metavar="DATE",
                        help="only entries from then: YYYY-MM-DD (its first second) or an ISO time, UTC unless it "
                             "says otherwise; anchored on the entry just before")
    verify.add_argument("--to", dest="end", metavar="DATE",
                        help="only entries before then: YYYY-MM-DD (through its last second) or an ISO time")
    verify.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    verify.add_argument("--json", action="store_true")


def cmd_audit(args: argparse.Namespace) -> int:
    if args.audit_command != "verify":  # pragma: no cover - argparse allows only verify
        raise UsageError(f"audit {args.audit_command}: unknown command")
    from blocks import TradeopsEnvironment
    from tradeops.cli import environment_for, parse_range_bound

    start = parse_range_bound(args.start, "--from", False) if args.start else None
    end = parse_range_bound(args.end, "--to", True) if args.end else None
    if start and end and start >= end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    environment = environment_for(args.config, quiet=True)
    store_url = TradeopsEnvironment.load(environment).store_url()
    return report_verification(store_url, start, end, args.json)


def report_verification(store_url: str, start, end, as_json: bool) -> int:  # noqa: ANN001
    """Verify and print: the summary on stdout when intact, the break on stderr when not."""
    from tasks.audit import verify_chain

    report = verify_chain(store_url, start, end)
    if as_json:
        print(json.dumps(report.to_dict()))
    else:
        for note in report.notes:
            print(note)
        if report.intact:
            print(f"{report.summary()} in {report.seconds:.2f} s")
    if not report.intact:
        print(f"tradeops: {report.summary()}", file=sys.stderr)
        return 1
    return 0
