"""`tradeops audit verify`: recompute the environment's audit chain and name its first break, then
check the ops store against every chain head exported offsite (flows/audit_export.py), which
catches a chain rewritten from some entry on with every hash recomputed.

Exit 0 when the chain (or the window) holds and matches its exports, 1 when it does not, with the
entry at fault named on stderr (and in the JSON object with --json); 2 for usage errors, as every
tradeops command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tradeops.cli_options import add_environment_options
from tradeops.errors import UsageError

PERMISSION = "audit.read"  # runbook 000: compliance officers (and administrators) read the audit trail


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
    verify.add_argument("--no-exports", dest="exports", action="store_false",
                        help="skip the comparison with the chain heads exported offsite")
    add_environment_options(verify)


def cmd_audit(args: argparse.Namespace) -> int:
    if args.audit_command != "verify":  # pragma: no cover - argparse allows only verify
        raise UsageError(f"audit {args.audit_command}: unknown command")
    from blocks import TradeopsEnvironment
    from tradeops.cli import environment_for, parse_range_bound
    from tradeops.store.records import append_audit

    start = parse_range_bound(args.start, "--from", False) if args.start else None
    end = parse_range_bound(args.end, "--to", True) if args.end else None
    if start and end and start >= end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    environment = environment_for(args.config, quiet=True)
    block = TradeopsEnvironment.load(environment)
    actor = checked_actor(block, args.user, environment)
    storage = block.offsite() if args.exports else None
    code = report_verification(block.store_url(), start, end, args.json, storage, environment)
    append_audit(block.store_url(), "audit_verify", actor.user, success=code == 0,
                 details={"environment": environment, "from": args.start, "to": args.end,
                          "exports_compared": storage is not None, "intact": code == 0})
    return code


def checked_actor(block, given_user: str | None, environment: str):  # noqa: ANN001, ANN201
    """The acting user, if their role may read the audit trail; a denial is audited and raised."""
    from tasks.access import AccessDenied, actor_for
    from tradeops.store.records import append_audit

    actor = actor_for(block.access_users, given_user, block.access_default_user)
    try:
        actor.require(PERMISSION)
    except AccessDenied as exc:
        append_audit(block.store_url(), "audit_verify", actor.user, success=False,
                     details={"denied": str(exc), "role": actor.role, "permission": PERMISSION,
                              "environment": environment})
        raise
    return actor


def report_verification(store_url: str, start, end, as_json: bool, storage=None,  # noqa: ANN001
                        environment: str | None = None) -> int:
    """Verify and print: the summaries on stdout when all holds, what broke on stderr when not."""
    from tasks.audit import verify_chain

    report = verify_chain(store_url, start, end)
    exports = compare_with_exports(store_url, storage, environment) if storage is not None else None
    if as_json:
        print(json.dumps({**report.to_dict(), "exports": exports.to_dict() if exports else None}))
    else:
        for note in report.notes + (exports.notes if exports else []):
            print(note)
        if report.intact:
            print(f"{report.summary()} in {report.seconds:.2f} s")
        if exports is not None and exports.intact:
            print(exports.summary())
        elif exports is None:
            print("not compared with exported chain heads (no offsite storage, or --no-exports)")
    failed = 0
    for problem in (report, exports):
        if problem is not None and not problem.intact:
            print(f"tradeops: {problem.summary()}", file=sys.stderr)
            failed = 1
    return failed


def compare_with_exports(store_url: str, storage, environment: str):  # noqa: ANN001, ANN201
    """Every offsite chain head checked against the store (tasks/audit/exports.py)."""
    import tempfile

    from tasks.audit.exports import check_against_exports
    from tasks.audit.verify import open_chain

    with tempfile.TemporaryDirectory(prefix="tradeops-audit-") as work, open_chain(store_url) as chain:
        return check_against_exports(chain, storage, environment, Path(work))
