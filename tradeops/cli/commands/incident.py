"""`tradeops incident`: incidents of an environment (runbooks 003 and 004), without SQL.

- `list` (open ones by default; `--status all`), `show ID` (with its timeline), `postmortem ID`
  (runbook 003's post-incident write-up, filled from the timeline): need `incident.read`.
- `ack ID`, `note ID TEXT`, `resolve ID`: need `incident.ack`, `incident.note`, `incident.resolve`;
  each is audited (a denial too) and lands on the incident's timeline with the acting user.
- `silence CONDITION --for 4h`: no notices for the condition until the silence expires (at most
  7 days; Alertmanager's silences with an expiry); needs `incident.silence`, audited.
Exit 0 done, 2 usage (an unknown incident, acknowledging one that is not open), 3 access denied.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from blocks import TradeopsEnvironment
from tasks.access import AccessDenied, cli_actor
from tasks.alert_groups import silence
from tasks.incidents import acknowledge, add_note, get_incident, list_incidents, resolve
from tasks.incidents.postmortem import postmortem_markdown
from tradeops.cli.common import environment_for
from tradeops.cli.options import add_environment_options
from tradeops.clock import utcnow
from tradeops.files import atomic_write_text
from tradeops.store.identity import identity_scoped
from tradeops.store.records import append_audit, current_flow_run_id


# The parser is built for every `tradeops` command: what a subcommand needs (Prefect, the ops
# store) is imported when it runs, as in the other command groups.

# what each subcommand needs; administrators (runbook 000's "*") hold them all
PERMISSIONS = {"list": "incident.read", "show": "incident.read", "postmortem": "incident.read",
               "ack": "incident.ack", "note": "incident.note", "resolve": "incident.resolve",
               "silence": "incident.silence"}
MAX_SILENCE = timedelta(days=7)  # a silence always expires (Alertmanager's silences do too)
_DURATION = re.compile(r"^(\d+)([mhd])$")
CHANGES = ("ack", "note", "resolve")
SEVERITY_CHOICES = ("P1", "P2", "P3", "P4")  # tasks/incidents/severity.py
STATUS_CHOICES = {"open": ("open", "acknowledged"), "acknowledged": ("acknowledged",), "resolved": ("resolved",),
                  "all": ()}


def add_arguments(incident: argparse.ArgumentParser, parser_class: type) -> None:
    commands = incident.add_subparsers(dest="incident_command", required=True, parser_class=parser_class)
    listing = add_environment_options(commands.add_parser("list", help="incidents (open and acknowledged by default)"))
    listing.add_argument("--status", choices=sorted(STATUS_CHOICES), default="open")
    listing.add_argument("--severity", choices=SEVERITY_CHOICES)
    show = add_environment_options(commands.add_parser("show", help="one incident and its timeline"))
    show.add_argument("incident_id", type=int, metavar="ID")
    ack = add_environment_options(commands.add_parser("ack", help="acknowledge an open incident"))
    ack.add_argument("incident_id", type=int, metavar="ID")
    ack.add_argument("--note", default="", help="what the acknowledgement says")
    note = add_environment_options(commands.add_parser("note", help="add a note to an incident's timeline"))
    note.add_argument("incident_id", type=int, metavar="ID")
    note.add_argument("text")
    done = add_environment_options(commands.add_parser("resolve", help="resolve an incident"))
    done.add_argument("incident_id", type=int, metavar="ID")
    done.add_argument("--note", default="", help="how it was resolved")
    hush = add_environment_options(commands.add_parser(
        "silence", help="no notices for a condition until the silence expires (a resolved notice neither)"))
    hush.add_argument("condition_key", metavar="CONDITION", help="<condition>:<target>, e.g. certificate_due:cert:api.pem")
    hush.add_argument("--for", dest="duration", type=silence_duration, required=True, metavar="DURATION",
                      help="how long: 30m, 4h, 2d (at most 7 days)")
    post = add_environment_options(commands.add_parser("postmortem", help="post-mortem markdown from the timeline"))
    post.add_argument("incident_id", type=int, metavar="ID")
    post.add_argument("--out", type=Path, help="write it to this file (else stdout)")


def silence_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: give minutes, hours or days (30m, 4h, 2d)")
    amount = int(match.group(1))
    duration = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[
        match.group(2)]
    if not timedelta(minutes=1) <= duration <= MAX_SILENCE:
        raise argparse.ArgumentTypeError(f"{text}: a silence lasts from 1 minute to 7 days")
    return duration


def checked_actor(block: Any, args: argparse.Namespace, environment: str) -> Any:
    operation = f"incident_{args.incident_command}"
    actor = cli_actor(block, args.user, operation, environment)
    permission = PERMISSIONS[args.incident_command]
    try:
        actor.require(permission)
    except AccessDenied as exc:
        append_audit(block.store_url(), operation, actor.user, success=False,
                     details={"denied": str(exc), "role": actor.role, "permission": permission,
                              "environment": environment, "incident": getattr(args, "incident_id", None)})
        raise
    return actor


@identity_scoped
def run(args: argparse.Namespace) -> int:
    environment = environment_for(args.config, quiet=True, requested_user=args.user)
    block = TradeopsEnvironment.load(environment)
    actor = checked_actor(block, args, environment)
    store = block.store_url()
    command = args.incident_command
    if command == "list":
        incidents = list_incidents(store, environment, STATUS_CHOICES[args.status], args.severity)
        if args.json:
            print(json.dumps([i.as_dict() for i in incidents]))
        else:
            for i in incidents:
                print(f"{i.id:>6}  {i.severity}  {i.status:<12} {i.opened_at[:19]}  {i.condition_key:<40} {i.title}")
            print(f"{len(incidents)} incident(s)")
        return 0
    if command in ("show", "postmortem"):
        incident = get_incident(store, environment, args.incident_id)
        if command == "postmortem":
            return _postmortem(incident, args.out)
        print(json.dumps(incident.as_dict()) if args.json else render_incident(incident))
        return 0
    if command == "silence":
        until = utcnow() + args.duration
        silence(store, environment, args.condition_key, until)
        append_audit(store, "incident_silence", actor.user, details={
            "environment": environment, "condition": args.condition_key, "until": until.isoformat()})
        print(json.dumps({"condition": args.condition_key, "silenced_until": until.isoformat()}) if args.json
              else f"{args.condition_key}: silenced until {until.isoformat()}")
        return 0
    run_id = current_flow_run_id()
    if command == "ack":
        incident = acknowledge(store, environment, args.incident_id, actor.user, args.note, run_id)
    elif command == "note":
        incident = add_note(store, environment, args.incident_id, actor.user, args.text, run_id)
    else:
        incident = resolve(store, environment, args.incident_id, actor.user, args.note, run_id)
    append_audit(store, f"incident_{command}", actor.user,
                 details={"environment": environment, "incident": incident.id, "condition": incident.condition_key,
                          "severity": incident.severity, "status": incident.status,
                          "text": getattr(args, "text", None) or getattr(args, "note", "")})
    print(json.dumps(incident.as_dict()) if args.json else f"incident {incident.id}: {incident.status}")
    return 0


def _postmortem(incident: Any, out: Path | None) -> int:
    markdown = postmortem_markdown(incident)
    if out is None:
        print(markdown)
    else:
        atomic_write_text(out, markdown)
        print(f"post-mortem of incident {incident.id} written to {out}")
    return 0


def render_incident(incident: Any) -> str:
    lines = [f"incident {incident.id}: {incident.title}",
             f"  severity:      {incident.severity} ({incident.sev})",
             f"  status:        {incident.status}",
             f"  condition:     {incident.condition_key}",
             f"  opened:        {incident.opened_at} by {incident.opened_by}",
             f"  respond by:    {incident.response_due_at}" + ("  (MISSED)" if incident.response_breached else ""),
             f"  resolve by:    {incident.resolution_due_at}"]
    if incident.acknowledged_at:
        lines.append(f"  acknowledged:  {incident.acknowledged_at} by {incident.acknowledged_by}")
    if incident.resolved_at:
        lines.append(f"  resolved:      {incident.resolved_at} by {incident.resolved_by}")
    lines.append("  timeline:")
    lines += [f"    {e.at[:19]}  {e.kind:<11} {e.actor:<16} {e.text}" + (f"  [run {e.flow_run_id}]" if e.flow_run_id
                                                                             else "")
              for e in incident.timeline]
    return "\n".join(lines)
