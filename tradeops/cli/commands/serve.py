"""`tradeops serve`: every deployment of the calendar served from this process."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import nullcontext
from pathlib import Path

from prefect import serve
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from deployments.calendar import served_deployments
from tradeops.cli.common import environment_for
from tradeops.cli.local_server import local_prefect_server
from tradeops.cli.options import port_number
from tradeops.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    parser.add_argument("--config", type=Path)
    parser.add_argument("--port", type=port_number, help="port of the local Prefect server (default 4200, else a free one)")
    parser.add_argument("--schedule", dest="schedules", action="append", default=[], metavar="DEPLOYMENT=CRON",
                        help="run a deployment on another cron (UTC) for this serve, e.g. "
                             "daily-backup-0200='30 1 * * *'")


def run(args: argparse.Namespace) -> int:
    """Serve the calendar from this process until SIGTERM or Ctrl-C. On the embedded default (no
    PREFECT_API_URL) a local Prefect server with its scheduler runs beside it, and stops with it."""
    schedules = dict(parse_schedule_override(item) for item in args.schedules)
    signal.signal(signal.SIGTERM, _terminate)  # whatever the phase, leave through `finally`
    remote = os.environ.get("PREFECT_API_URL")
    server = nullcontext(remote) if remote else local_prefect_server(Path(get_current_settings().home), args.port)
    try:
        with server as api:
            os.environ["PREFECT_API_URL"] = api  # the flow-run processes the runner starts
            with temporary_settings(updates={PREFECT_API_URL: api}):
                environment = environment_for(args.config)
                deployments = served_deployments(environment, schedules)
                print(f"serving {len(deployments)} deployment(s) of environment {environment!r} on {api}"
                      f"{'' if remote else ' (a local server; UI at ' + api.removesuffix('/api') + ')'}; "
                      "stop with Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
                serve(*deployments, pause_on_shutdown=bool(remote), print_starting_message=False)
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (ours, or the runner's own handler)
        pass
    print("stopped serving; the local server is stopped too" if not remote else "stopped serving", file=sys.stderr)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_schedule_override(item: str) -> tuple[str, str]:
    name, sep, cron = item.partition("=")
    if not sep or not name.strip() or len(cron.split()) != 5:
        raise UsageError(f"--schedule {item!r}: expected DEPLOYMENT='M H DOM MON DOW' (a five-field cron)")
    return name.strip(), cron.strip()
