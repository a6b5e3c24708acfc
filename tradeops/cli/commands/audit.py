"""`tradeops audit`: the tamper-evident audit trail, read by an auditor without SQL.

- `verify`: recompute the environment's audit chain and name its first break, then check the ops
  store against every chain head exported offsite (flows/audit_export.py), which catches a chain
  rewritten from some entry on with every hash recomputed; says which head is exported and how
  many newer entries are not yet.
- `list`: the entries a period, user, operation or flow run picks (a table, --json or --csv).
- `show ENTRY_ID`: one entry in full: its hash, its predecessor, its flow run, whether its hash
  holds and links, and whether it is exported and its exported copy still matches.

All need `audit.read`. They only read: a denial is audited, a read is not, so reading the trail
never moves its head. Exit 0 when the chain (or the window) holds and matches its exports, 1 when
it does not, with the entry at fault named on stderr (and in the JSON object with --json); 2 for
usage errors, 3 for access denied, as every tradeops command.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from blocks import TradeopsEnvironment
from tasks.access import AccessDenied, cli_actor
from tasks.audit import verify_chain
from tasks.audit.entries import EntryFilter, NoSuchEntry, entry_detail, list_entries
from tasks.audit.exports import check_against_exports
from tasks.audit.verify import open_chain
from tradeops.cli.common import environment_for, parse_range_bound
from tradeops.cli.options import add_environment_options
from tradeops.errors import UsageError
from tradeops.store.identity import identity_scoped
from tradeops.store.records import append_audit


PERMISSION = "audit.read"  # runbook 000: compliance officers (and administrators) read the audit trail
CSV_COLUMNS = ("id", "timestamp", "operation", "user", "success", "strategy_name", "version", "repository_hash",
               "execution_time_ms", "flow_run_id", "flow_run_link", "changed_files", "compliance_flags", "details",
               "prev_hash", "entry_hash")


def add_arguments(audit: argparse.ArgumentParser, parser_class: type) -> None:
    commands = audit.add_subparsers(dest="audit_command", required=True, parser_class=parser_class)
    verify = commands.add_parser("verify", help="recompute the hash chain; report the first entry that was "
                                                "modified, deleted, inserted or reordered")
    _add_window(verify)
    verify.add_argument("--no-exports", dest="exports", action="store_false",
                        help="skip the comparison with the chain heads exported offsite")
    add_environment_options(verify)

    listing = commands.add_parser("list", help="audit entries by period, user, operation or flow run")
    _add_window(listing)
    listing.add_argument("--user", dest="entry_user", metavar="USER", help="only entries of this user")
    listing.add_argument("--operation", help="only entries of this operation (e.g. config_apply)")
    listing.add_argument("--flow-run", dest="flow_run_id", metavar="ID", help="only entries of this flow run")
    listing.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    formats = listing.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="one JSON array of the entries")
    formats.add_argument("--csv", action="store_true", help="CSV with a header row, every column")
    listing.set_defaults(user=None)  # the acting user: the login's (`--user` filters here)

    show = commands.add_parser("show", help="one entry: its hash, predecessor, flow run, export and verification")
    show.add_argument("entry_id", type=int, metavar="ENTRY_ID")
    show.add_argument("--no-exports", dest="exports", action="store_false",
                      help="do not look for the entry in the exports offsite")
    add_environment_options(show)


def _add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", metavar="DATE",
                        help="only entries from then: YYYY-MM-DD (its first second) or an ISO time, UTC unless it "
                             "says otherwise")
    parser.add_argument("--to", dest="end", metavar="DATE",
                        help="only entries before then: YYYY-MM-DD (through its last second) or an ISO time")


@identity_scoped
def run(args: argparse.Namespace) -> int:
    start = parse_range_bound(args.start, "--from", False) if getattr(args, "start", None) else None
    end = parse_range_bound(args.end, "--to", True) if getattr(args, "end", None) else None
    if start and end and start >= end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    environment = environment_for(args.config, quiet=True, requested_user=args.user)
    block = TradeopsEnvironment.load(environment)
    checked_actor(block, args.user, environment, f"audit_{args.audit_command}")
    if args.audit_command == "list":
        return list_command(block.store_url(), start, end, args)
    if args.audit_command == "show":
        return show_command(block, environment, args)
    storage = block.offsite() if args.exports else None
    return report_verification(block.store_url(), start, end, args.json, storage, environment)


def checked_actor(block, given_user: str | None, environment: str, operation: str = "audit_verify"):  # noqa: ANN001, ANN201
    """The acting user, if their role may read the audit trail; a denial is audited and raised."""
    actor = cli_actor(block, given_user, operation, environment)
    try:
        actor.require(PERMISSION)
    except AccessDenied as exc:
        append_audit(block.store_url(), operation, actor.user, success=False,
                     details={"denied": str(exc), "role": actor.role, "permission": PERMISSION,
                              "environment": environment})
        raise
    return actor


def list_command(store_url: str, start, end, args: argparse.Namespace) -> int:  # noqa: ANN001

    entries = list_entries(store_url, EntryFilter(start, end, args.entry_user, args.operation, args.flow_run_id))
    if args.json:
        print(json.dumps([e.to_dict() for e in entries]))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for entry in entries:
            values = entry.to_dict()
            writer.writerow([json.dumps(values[c], sort_keys=True) if isinstance(values[c], (dict, list))
                             else values[c] for c in CSV_COLUMNS])
    else:
        count = 0
        for entry in entries:
            count += 1
            what = " ".join(filter(None, (entry.strategy_name, entry.version)))
            print(f"{entry.id:>8}  {entry.timestamp[:19]}  {entry.operation:<22} {entry.user:<16} "
                  f"{'ok' if entry.success else 'FAILED':<6} {what:<28} {entry.flow_run_id or ''}")
        print(f"{count} entr{'y' if count == 1 else 'ies'}", file=sys.stderr)
    return 0


def show_command(block, environment: str, args: argparse.Namespace) -> int:  # noqa: ANN001

    storage = block.offsite() if args.exports else None
    with tempfile.TemporaryDirectory(prefix="tradeops-audit-") as work:
        try:
            detail = entry_detail(block.store_url(), args.entry_id, storage, environment, Path(work))
        except NoSuchEntry as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(detail.to_dict()))
    else:
        print(render_detail(detail))
    return 0 if detail.verified else 1


def render_detail(detail) -> str:  # noqa: ANN001
    entry = detail.entry
    lines = [f"audit entry {entry.id}"]
    for name in ("timestamp", "operation", "user", "success", "strategy_name", "version", "repository_hash",
                 "execution_time_ms"):
        value = getattr(entry, name)
        if value is not None:
            lines.append(f"  {name + ':':<19}{value}")
    for name in ("changed_files", "compliance_flags", "details"):
        value = getattr(entry, name)
        if value:
            lines.append(f"  {name + ':':<19}{json.dumps(value, sort_keys=True, ensure_ascii=False)}")
    lines.append(f"  {'flow run:':<19}{entry.flow_run_link or 'none (not made by a flow run)'}")
    lines.append(f"  {'entry hash:':<19}{entry.entry_hash} ("
                 + ("its content hashes to it" if detail.hash_holds else "DOES NOT HOLD: its content hashes elsewhere")
                 + ")")
    before = detail.predecessor
    lines.append(f"  {'previous hash:':<19}{entry.prev_hash} ("
                 + (f"entry {before['id']}" if before else "the chain start")
                 + (", links" if detail.links else ", DOES NOT LINK: the entry before it has another hash") + ")")
    if not detail.exports_checked:
        lines.append(f"  {'exported:':<19}unknown (no offsite storage, or --no-exports)")
    elif detail.export is None:
        newest = detail.newest_exported_id
        lines.append(f"  {'exported:':<19}not yet (newest exported entry: "
                     + (f"id {newest})" if newest is not None else "none)"))
    else:
        export = detail.export
        copy = {True: "its exported copy matches", False: "its exported copy DIFFERS from the ops store",
                None: "its entries file is missing offsite"}[export.copy_matches]
        head = "the head matches the ops store" if export.head_matches else "the head NO LONGER matches the ops store"
        lines.append(f"  {'exported:':<19}{export.exported_day} in {export.entries_key or '?'}; {copy}; "
                     f"head {export.head_key}: {head}")
    lines.append(f"  {'verified:':<19}" + ("yes" if detail.verified else "NO")
                 + " (this entry; `tradeops audit verify` checks the whole chain)")
    return "\n".join(lines)


def report_verification(store_url: str, start, end, as_json: bool, storage=None,  # noqa: ANN001
                        environment: str | None = None) -> int:
    """Verify and print: the summaries on stdout when all holds, what broke on stderr when not."""
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
    with tempfile.TemporaryDirectory(prefix="tradeops-audit-") as work, open_chain(store_url) as chain:
        return check_against_exports(chain, storage, environment, Path(work))
