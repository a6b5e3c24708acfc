"""`tradeops change create|approve|implement|show|list`: change requests (runbook 003 "Change Management").

- `create --title T --risk LEVEL [--description ...]`: raise CR-YYYY-NNN (needs `git.commit`).
- `approve CR --as technical|business|security [--note ...]`: one approval, by someone other than
  the submitter whose role holds that kind's permission (tasks/changes/requests.py); the last one
  the risk asks for makes the request approved.
- `implement CR [--note ...]`: record that an approved request was carried out (`git.merge`).
- `show CR`, `list [--status S]`: any role of the environment.

Every change and every refusal is audited. Exit 0 done, 2 usage (unknown request, an approval the
risk does not ask for), 3 access denied (the role, or approving one's own request).
"""

from __future__ import annotations

import argparse
import json

from tasks.access import audited_refusal, cli_actor, refusal_details
from tasks.changes import (
    ChangeTemplate, approve_change, create_change, find_change, list_changes, mark_implemented, require_reader,
)
from tradeops.cli.common import lifecycle_environment
from tradeops.cli.options import add_environment_options
from tradeops.errors import TradeopsError
from tradeops.store.identity import identity_scoped
from tradeops.store.records import append_audit


RISKS = ("low", "medium", "high", "critical")  # tasks.changes.RISK_LEVELS (not imported: CLI start-up)
KINDS = ("technical", "business", "security")
TEMPLATE_OPTIONS = (("description", "what is being changed and why"), ("benefits", "expected benefits"),
                    ("plan", "implementation plan: steps, resources, schedule"), ("impacts", "potential impacts"),
                    ("mitigation", "mitigation strategies"), ("rollback", "rollback procedure"))


def add_arguments(change: argparse.ArgumentParser, parser_class: type) -> None:
    commands = change.add_subparsers(dest="change_command", required=True, parser_class=parser_class)
    create = add_environment_options(commands.add_parser("create", help="raise a change request"))
    create.add_argument("--title", required=True)
    create.add_argument("--risk", required=True, choices=RISKS,
                        help="low: technical approval; medium: + business; high, critical: + security")
    for name, text in TEMPLATE_OPTIONS:
        create.add_argument(f"--{name}", default="", help=text)
    approve = add_environment_options(commands.add_parser("approve", help="approve a change request"))
    approve.add_argument("number", metavar="CR", help="CR-YYYY-NNN")
    approve.add_argument("--as", dest="kind", required=True, choices=KINDS, help="which approval this is")
    approve.add_argument("--note", default="")
    show = add_environment_options(commands.add_parser("show", help="one change request, its approvals and links"))
    show.add_argument("number", metavar="CR")
    implement = add_environment_options(commands.add_parser(
        "implement", help="record that an approved change request was carried out (git.merge)"))
    implement.add_argument("number", metavar="CR")
    implement.add_argument("--note", default="", help="what was done (a merge commit, a deployment)")
    listing = add_environment_options(commands.add_parser("list", help="the environment's change requests"))
    listing.add_argument("--status", choices=["submitted", "approved", "implemented"])


@identity_scoped
def run(args: argparse.Namespace) -> int:
    environment, env = lifecycle_environment(args.config, args.user)
    store_url = env.store_url()
    operation = f"change_{args.change_command}"
    actor = cli_actor(env, args.user, operation, environment)
    try:
        output = COMMANDS[args.change_command](store_url, environment, actor, args)
    except TradeopsError as exc:
        if audited_refusal(exc):
            append_audit(store_url, operation, actor.user, success=False,
                         details={**refusal_details(exc), "role": actor.role, "environment": environment,
                                  "change_request": getattr(args, "number", None), "kind": getattr(args, "kind", None)})
        raise
    print(json.dumps(output, default=str) if args.json else change_output_text(output))
    return 0


def _create(store_url: str, environment: str, actor, args) -> dict:
    template = ChangeTemplate(title=args.title, risk=args.risk, description=args.description, benefits=args.benefits,
                              implementation_plan=args.plan, impacts=args.impacts, mitigation=args.mitigation,
                              rollback_plan=args.rollback)
    return create_change(store_url, environment, template, actor).as_dict()


def _approve(store_url: str, environment: str, actor, args) -> dict:
    return approve_change(store_url, environment, args.number, args.kind, actor, args.note).as_dict()


def _implement(store_url: str, environment: str, actor, args) -> dict:
    return mark_implemented(store_url, environment, args.number, actor,
                            {"note": args.note} if args.note else None).as_dict()


def _show(store_url: str, environment: str, actor, args) -> dict:
    require_reader(actor)
    return find_change(store_url, environment, args.number).as_dict()


def _list(store_url: str, environment: str, actor, args) -> list[dict]:
    require_reader(actor)
    return [view.as_dict() for view in list_changes(store_url, environment, args.status)]


COMMANDS = {"create": _create, "approve": _approve, "implement": _implement, "show": _show, "list": _list}


def change_output_text(output: dict | list) -> str:
    """A change request (or a list of them) as lines for the terminal (--json prints it whole)."""
    if isinstance(output, list):
        if not output:
            return "no change requests"
        return "\n".join(f"{c['number']:<12} {c['status']:<11} {c['risk']:<8} {c['submitted_by']:<14} "
                         f"{c['source']:<18} {c['title']}" for c in output)
    lines = [f"{output['number']}: {output['title']}",
             f"  status: {output['status']} (risk {output['risk']}; needs {', '.join(output['required'])} approval"
             + (f"; missing {', '.join(output['missing'])}" if output["missing"] else "") + ")",
             f"  submitted: {output['submitted_at']:%Y-%m-%d %H:%M} UTC by {output['submitted_by']} "
             f"({output['source']})"]
    for key, label in (("description", "description"), ("benefits", "benefits"),
                       ("implementation_plan", "implementation plan"), ("impacts", "impacts"),
                       ("mitigation", "mitigation"), ("rollback_plan", "rollback")):
        if output[key]:
            lines.append(f"  {label}: {output[key]}")
    for approval in output["approvals"]:
        lines.append(f"  approved ({approval['kind']}): {approval['approved_by']} ({approval['role']}) "
                     f"{approval['approved_at']:%Y-%m-%d %H:%M} UTC, audit entry {approval['audit_entry_id']}"
                     + (f": {approval['note']}" if approval["note"] else ""))
    if output["implemented_at"]:
        lines.append(f"  implemented: {output['implemented_at']:%Y-%m-%d %H:%M} UTC by {output['implemented_by']}")
    if output["links"]:
        lines.append(f"  links: {json.dumps(output['links'], sort_keys=True, default=str)}")
    return "\n".join(lines)
