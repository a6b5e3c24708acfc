"""The `tradeops` command: the contract users, deployments and the other flows rely on.

Exit codes: 0 the run Completed, 1 it Failed or Crashed, 2 invalid usage or configuration, 3 access denied
(a privileged flow run its acting user may not make ends Failed, and exits 3).
With `--json` the last line of stdout is one JSON object.

`COMMANDS` maps each command group to its module in tradeops/cli/commands/, imported by name only
when that group runs (so `tradeops experiment show` loads the experiment module alone, and no
Prefect); `tradeops wal` (PostgreSQL's archive_command) goes straight to tradeops.wal.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Sequence

from tradeops.errors import TradeopsError

PREFECT_DEFAULTS = {
    # The first start of Prefect's ephemeral server creates its SQLite database and can be slow.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


@dataclass(frozen=True)
class Command:
    """A command group: its module (with `add_arguments(parser, parser_class)` and `run(args)`)."""
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "flows": Command("tradeops.cli.commands.flows", "list every flow, its deployment and schedule"),
    "run": Command("tradeops.cli.commands.run", "run a flow now"),
    "serve": Command("tradeops.cli.commands.serve",
                     "serve every deployment on its schedule from this process (starts a local Prefect server "
                     "with its scheduler unless PREFECT_API_URL is set)"),
    "apply": Command("tradeops.cli.commands.apply", "validate a tradeops.toml and upsert its blocks"),
    "sandbox": Command("tradeops.cli.commands.sandbox", "a generated trading platform to operate on"),
    "db": Command("tradeops.cli.commands.db", "the ops store"),
    "logs": Command("tradeops.cli.commands.logs", "archived platform logs"),
    "experiment": Command("tradeops.cli.commands.experiment", "strategy A/B experiments"),
    "strategy": Command("tradeops.cli.commands.strategy",
                        "strategy versions: tag, diff, approve, promote, roll back"),
    "audit": Command("tradeops.cli.commands.audit", "the tamper-evident audit trail"),
    "change": Command("tradeops.cli.commands.change",
                      "change requests (CR-YYYY-NNN): create, approve, implement, show, list"),
    "incident": Command("tradeops.cli.commands.incident",
                        "incidents: list, show, ack, note, resolve, postmortem"),
    "metrics": Command("tradeops.cli.commands.metrics",
                       "Prometheus metrics of an environment (from its ops store)"),
    "server": Command("tradeops.cli.commands.server",
                      "Prefect server upkeep: zombie runs and missed failure notifications"),
    "quickstart": Command("tradeops.cli.commands.quickstart",
                          "sandbox + apply + the daily flows (what `make run` does)"),
}
WAL_HELP = "PostgreSQL's archive_command and restore_command (tradeops wal --help)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep its message, add the hint
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def command_module(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name].module)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; `only`: fill in that command group's arguments alone (the others are listed by
    name and help, their modules not imported). None: every group's."""
    parser = _Parser(prog="tradeops", description="Operations automation for trading platforms.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        group = sub.add_parser(name, help=command.help)
        if only is None or only == name:
            command_module(name).add_arguments(group, _Parser)
    sub.add_parser("wal", help=WAL_HELP, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["wal"]:  # archive_command and restore_command: once per WAL segment, so nothing else loads
        return importlib.import_module("tradeops.wal.cli").main(argv[1:])
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only=wanted or "").parse_args(argv)
    try:
        return command_module(args.command).run(args)
    except TradeopsError as exc:
        print(f"tradeops: {exc}", file=sys.stderr)
        if getattr(args, "json", False) and args.command == "run":  # the last line is still the result
            print(json.dumps({"flow": args.flow, "flow_run_id": None, "state": "NotStarted", "message": str(exc),
                              "result": {"error": str(exc)}, "exit_code": exc.exit_code}))
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
