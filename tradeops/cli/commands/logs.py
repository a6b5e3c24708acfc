"""`tradeops logs retrieve`: the archived lines of one log type in a time range."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from blocks import TradeopsEnvironment
from tasks.logs.index import log_types
from tasks.logs.retrieve import RetrievalError, retrieve_logs
from tasks.logs.sources import archive_reader
from tradeops.cli.common import environment_for, parse_range_bound
from tradeops.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    commands = parser.add_subparsers(dest="logs_command", required=True, parser_class=parser_class)
    retrieve = commands.add_parser("retrieve", help="the archived lines of one log type in a time range")
    retrieve.add_argument("--from", dest="start", required=True, metavar="DATE",
                          help="YYYY-MM-DD (from its first second) or an ISO time, UTC unless it says otherwise")
    retrieve.add_argument("--to", dest="end", required=True, metavar="DATE",
                          help="YYYY-MM-DD (through its last second) or an ISO time (exclusive)")
    retrieve.add_argument("--type", dest="log_type", required=True, metavar="NAME", help="e.g. trading, risk, api")
    retrieve.add_argument("--out", type=Path, required=True, metavar="DIR")
    retrieve.add_argument("--target", help="only this log directory (its name in tradeops.toml)")
    retrieve.add_argument("--config", type=Path)
    retrieve.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    start, end = parse_range_bound(args.start, "--from", False), parse_range_bound(args.end, "--to", True)
    if start >= end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    environment = environment_for(args.config, quiet=True)

    block = TradeopsEnvironment.load(environment)
    store_url = block.store_url()
    known = log_types(store_url, environment)
    if args.log_type not in known:
        raise UsageError(f"--type {args.log_type!r}: no archives of that type in environment {environment!r}; "
                         f"archived types: {', '.join(known) or 'none yet (run log-archival first)'}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result = retrieve_logs(store_url, environment, args.log_type, start, end, args.out,
                               archive_reader(block), args.target)
    except RetrievalError as exc:
        print(f"tradeops: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(vars(result)))
    else:
        print(f"{result.lines} line(s) of {args.log_type} from {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC "
              f"-> {result.output}\n  read {result.members_read} member(s) of {len(result.archives_read)} archive(s); "
              f"skipped {result.members_skipped} member(s) outside the range")
    return 0
