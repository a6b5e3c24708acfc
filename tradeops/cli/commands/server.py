"""`tradeops server setup-automations|sweep`: keep the Prefect server free of zombie runs.

`setup-automations` creates (or updates) Prefect's zombie automation on the server at
PREFECT_API_URL, limited to the tradeops flows: a run that stops sending heartbeats is marked
Crashed. `sweep` is the same without event services, and more: it marks Crashed the Running
runs whose process is gone from this host (or whose heartbeat is older than --stale-minutes),
then sends the failure notifications no hook sent (those runs, runs the automation crashed,
channels that refused). Run it every few minutes (cron, or a deployment); it is idempotent.
Exit 0, or 2 for usage errors, as every tradeops command.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

from prefect.settings import get_current_settings

from flows.registry import flow_severities
from tasks.zombies import AUTOMATION_NAME, ensure_zombie_automation, notify_missed_failures, sweep_zombies
from tradeops.cli.options import bounded
from tradeops.errors import UsageError


WEEK_SECONDS = 7 * 24 * 3600


def add_arguments(server: argparse.ArgumentParser, parser_class: type) -> None:
    commands = server.add_subparsers(dest="server_command", required=True, parser_class=parser_class)
    setup = commands.add_parser("setup-automations", help="create or update the automation that marks flow runs "
                                                          "without heartbeats Crashed")
    setup.add_argument("--within", type=bounded(int, 30, WEEK_SECONDS, " seconds"), metavar="SECONDS",
                       help="heartbeat silence that makes a zombie (default: 3 heartbeats, from "
                            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY, 180 s unless set)")
    setup.add_argument("--json", action="store_true")
    sweep = commands.add_parser("sweep", help="mark zombie runs Crashed and send the failure notifications "
                                              "no hook sent")
    sweep.add_argument("--stale-minutes", type=bounded(float, 1, 7 * 24 * 60, " minutes"), default=15,
                       help="a run whose process cannot be checked here is a zombie after this long without a "
                            "heartbeat (default 15)")
    sweep.add_argument("--notify-window-minutes", type=bounded(float, 0, 7 * 24 * 60, " minutes"), default=60,
                       help="catch up on failed runs that started this recently (default 60)")
    sweep.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.server_command == "setup-automations":
        return setup_automations(args.within, args.json)
    return sweep(timedelta(minutes=args.stale_minutes), timedelta(minutes=args.notify_window_minutes), args.json)


def default_within() -> int:
    """Three heartbeats: the workers' frequency as this machine's settings say (Prefect's
    documented automation waits 90 s for heartbeats every 30 s)."""
    return 3 * (get_current_settings().flows.heartbeat_frequency or 180)


def setup_automations(within_seconds: int | None, as_json: bool) -> int:
    within = within_seconds or default_within()
    if within < 30:
        raise UsageError(f"--within {within}: heartbeats come at most every 30 s; give at least 30")
    action, automation_id = ensure_zombie_automation(timedelta(seconds=within), list(flow_severities()))
    if as_json:
        print(json.dumps({"automation": AUTOMATION_NAME, "id": str(automation_id), "action": action,
                          "within_seconds": within}))
    else:
        print(f"{action} automation {AUTOMATION_NAME!r} ({automation_id}): tradeops flow runs without a heartbeat "
              f"for {within} s are marked Crashed; run `tradeops server sweep` to notify")
    return 0


def sweep(stale_after: timedelta, notify_window: timedelta, as_json: bool) -> int:
    if stale_after <= timedelta(0) or notify_window < timedelta(0):
        raise UsageError("--stale-minutes must be positive and --notify-window-minutes not negative")
    severities = flow_severities()
    verdicts = sweep_zombies(severities, stale_after)
    notified = notify_missed_failures(severities, notify_window)
    if as_json:
        print(json.dumps({"running": [v.as_dict() for v in verdicts], "notified": notified}))
        return 0
    for v in verdicts:
        suffix = f"; notification {v.notification}" if v.verdict == "crashed" else ""
        print(f"{v.flow_name:<24} {v.flow_run_id} {v.verdict}: {v.evidence}{suffix}")
    for run_id, status in notified.items():
        print(f"failure notification for flow run {run_id}: {status}")
    crashed = sum(v.verdict == "crashed" for v in verdicts)
    print(f"{len(verdicts)} running flow run(s) checked, {crashed} marked Crashed; "
          f"{len(notified)} missed failure notification(s) handled")
    return 0
