"""`tradeops wal push|get`: PostgreSQL's archive_command and restore_command.

    archive_command = 'tradeops wal push %p --spool /var/lib/tradeops/wal-spool'
    restore_command = 'tradeops wal get %f %p --queue <restore folder>/queue'   (a restore writes it)

Exit 0 when done; push exits 1 on any failure (PostgreSQL keeps the segment and retries) and
2 on a usage error. Messages go to stderr, which PostgreSQL writes to its log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tradeops.wal import queue, spool
from tradeops.wal.names import WalError


def build_parser(parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = parser_class(prog="tradeops wal", description="PostgreSQL's archive_command and restore_command.")
    commands = parser.add_subparsers(dest="wal_command", required=True)
    push = commands.add_parser("push", help="archive_command: copy a WAL file into the spool (checked, durable)")
    push.add_argument("path", type=Path, help="%%p: the WAL file, relative to the data directory")
    push.add_argument("--spool", type=Path, required=True, help="the spool folder, owned by the cluster owner")
    push.add_argument("--pgdata", type=Path, default=Path("."),
                      help="the cluster's data directory (default: the current one, as PostgreSQL runs it)")
    get = commands.add_parser("get", help="restore_command: the WAL file a restore asks for, from its queue")
    get.add_argument("name", help="%%f: the WAL file name")
    get.add_argument("destination", type=Path, help="%%p: where PostgreSQL wants it")
    get.add_argument("--queue", type=Path, required=True, help="the restore's queue folder")
    get.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the restore (default 600)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # for restore_command, a usage error must stop recovery, not read as "not there"
        if list(argv or sys.argv[1:])[:1] == ["get"] and exc.code:
            return queue.FATAL
        raise
    if args.wal_command == "get":
        try:
            return queue.get(args.name, args.destination, args.queue, args.timeout)
        except Exception as exc:  # noqa: BLE001 - exit 1 would tell PostgreSQL "not in the archive": never that
            print(f"tradeops wal get: {args.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return queue.FATAL
    try:
        spool.push(args.path, args.spool, args.pgdata)
    except WalError as exc:
        print(f"tradeops wal push: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
