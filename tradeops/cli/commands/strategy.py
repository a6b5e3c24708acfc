"""`tradeops strategy ...`: version a strategy repository (commit + annotated semver tag), list and
diff versions, approve, promote and roll back the `production` pointer.

Each command is checked against runbook 000's role table (tasks/access.py), acts through
tasks/strategies/versioning.py (pygit2, no git subprocess) and appends one audit entry with the
runbook's fields (strategy_name, version, repository_hash, execution_time_ms, changed_files,
compliance_flags); denials exit 3 and are audited too. Usage errors (unknown strategy or version,
nothing to commit) exit 2 and record nothing, as `tradeops experiment` does.

Change control: when the environment's `strategy_approval_required` is set ([strategies]
approval_required), promotion needs an approval of that version's commit by another user holding
`git.merge` (see tasks/strategies/audit.py). Rollback needs none: it returns to a version that was
promoted before, and must stay fast in an incident.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pygit2

from blocks import TradeopsEnvironment
from tasks.access import AccessDenied, cli_actor
from tasks.changes import ChangeTemplate, raise_implemented_change
from tasks.strategies import APPROVAL_PERMISSION
from tasks.strategies.audit import approvals_of, audit_history, check_approver, required_approval, version_author
from tasks.strategies.versioning import (
    SemVer, VersioningError, create_version, diff_versions, find_strategy_repository, list_versions,
    open_repository, production_commit, promote, reflog_history, resolve_version, rollback, rollback_target,
)
from tradeops.cli.common import environment_for
from tradeops.cli.options import add_environment_options
from tradeops.store.identity import identity_scoped
from tradeops.store.records import append_audit


PERMISSIONS = {"version": "git.create_version", "versions": "git.read", "diff": "git.read",
               "approve": APPROVAL_PERMISSION, "promote": "git.merge", "rollback": "git.merge"}
CHANGES = ("version", "approve", "promote", "rollback")  # the commands under change control


def add_arguments(strategy: argparse.ArgumentParser, parser_class: type) -> None:
    commands = strategy.add_subparsers(dest="strategy_command", required=True, parser_class=parser_class)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_environment_options(p)
        p.add_argument("strategy", help="the strategy repository's name in the environment's git sets")
        return p

    version = common(commands.add_parser("version", help="commit the working changes and tag the next version"))
    version.add_argument("--bump", required=True, choices=["major", "minor", "patch"])
    version.add_argument("-m", "--message", required=True, help="commit and tag message")
    common(commands.add_parser("versions", help="the strategy's versions and which one is in production"))
    diff = common(commands.add_parser("diff", help="files and lines changed between two versions"))
    diff.add_argument("a", help="version (1.2.0 or v1.2.0) or any revision")
    diff.add_argument("b", help="version (1.2.0 or v1.2.0) or any revision")
    diff.add_argument("--patch", action="store_true", help="print the patch text too")
    approve = common(commands.add_parser("approve", help="record your approval of a version for production"))
    approve.add_argument("version")
    approve.add_argument("--note", default="")
    common(commands.add_parser("promote", help="point production at a version")).add_argument("version")
    common(commands.add_parser("rollback", help="point production back at the previously promoted version"))


@identity_scoped
def run(args: argparse.Namespace) -> int:
    environment = environment_for(args.config, quiet=True, requested_user=args.user)
    return run_strategy_command(TradeopsEnvironment.load(environment), environment, args)


@dataclass
class Context:
    block: Any
    store_url: str
    environment: str
    actor: Any
    approval_required: bool


@dataclass
class Outcome:
    output: Any
    version: str | None = None
    commit: str | None = None
    changed_files: list[str] = field(default_factory=list)
    flags: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)


@identity_scoped
def run_strategy_command(block: Any, environment: str, args: argparse.Namespace) -> int:
    """Check the actor's role, act on the repository, audit (denials too), print."""
    store_url = block.store_url()
    command = args.strategy_command
    operation = f"strategy_{command}"
    actor = cli_actor(block, args.user, operation, environment)
    ctx = Context(block, store_url, environment, actor, bool(getattr(block, "strategy_approval_required", False)))
    flags = {"sox_404": True, "change_control": command in CHANGES, "approval_required": ctx.approval_required}
    started = time.perf_counter()
    try:
        actor.require(PERMISSIONS[command])
        repo = open_repository(find_strategy_repository(block.git_sets(), args.strategy))
        outcome = COMMANDS[command](ctx, repo, args)
    except AccessDenied as exc:
        append_audit(store_url, operation, actor.user, success=False, strategy_name=args.strategy,
                     version=plain_version(getattr(args, "version", None)), execution_time_ms=_ms(started),
                     compliance_flags=flags,
                     details={"denied": str(exc), "role": actor.role, "environment": environment})
        raise
    elapsed_ms = _ms(started)
    entry = append_audit(store_url, operation, actor.user, strategy_name=args.strategy, version=outcome.version,
                         repository_hash=outcome.commit, execution_time_ms=elapsed_ms,
                         changed_files=outcome.changed_files, compliance_flags={**flags, **outcome.flags},
                         details={"role": actor.role, "environment": environment, **outcome.details})
    output = outcome.output
    if command == "promote":
        request = _promotion_change_request(ctx, args.strategy, outcome, entry)
        output = {**output, "change_request": request.number}
    if isinstance(output, dict):
        output = {**output, "execution_time_ms": elapsed_ms, "audit_trail_id": audit_trail_id(entry)}
    print(json.dumps(output, default=str) if args.json else strategy_output_text(command, output, args))
    return 0


def audit_trail_id(entry) -> str:
    """Runbook 000's `audit_trail_id` form (audit-2025-11-26-001234) for an audit entry."""
    return f"audit-{entry.timestamp:%Y-%m-%d}-{entry.id:06d}"


def plain_version(text: str | None) -> str | None:
    """"v1.2.3" -> "1.2.3" (runbook 000's audit entries write versions bare)."""
    if text is None:
        return None
    parsed = SemVer.parse(text)
    return str(parsed) if parsed else text


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# -- the commands ------------------------------------------------------------------------------

def _version(ctx: Context, repo, args) -> Outcome:
    author = pygit2.Signature(ctx.actor.user, ctx.actor.user)
    result = create_version(repo, args.bump, args.message, author)
    changes = [{"path": c.path, "change": c.kind} for c in result.changes]
    output = {"strategy": result.strategy, "version": result.version, "tag": result.tag, "commit": result.commit,
              "branch": result.branch, "changed_files": changes, "git_ms": result.elapsed_ms}
    return Outcome(output, result.version, result.commit, result.changed_files,
                   details={"tag": result.tag, "branch": result.branch, "bump": args.bump,
                            "message": args.message, "changes": changes, "git_ms": result.elapsed_ms})


def _versions(ctx: Context, repo, args) -> Outcome:
    versions = [{"version": v.version, "tag": v.tag, "commit": v.commit, "date": v.date.isoformat(),
                 "message": v.message, "tagger": v.tagger, "in_production": v.in_production}
                for v in list_versions(repo)]
    production = production_commit(repo)
    head = None if repo.head_is_unborn else str(repo.head.target)
    return Outcome({"strategy": args.strategy, "production_commit": production, "versions": versions},
                   commit=head, details={"versions": len(versions), "production_commit": production})


def _diff(ctx: Context, repo, args) -> Outcome:
    diff = diff_versions(repo, args.a, args.b)
    files = [{"path": f.path, "status": f.status, "additions": f.additions, "deletions": f.deletions,
              "binary": f.binary} for f in diff.files]
    output = {"strategy": args.strategy, "a": diff.a, "b": diff.b, "commit_a": diff.commit_a,
              "commit_b": diff.commit_b, "files": files, "additions": diff.additions,
              "deletions": diff.deletions, "patch": diff.patch}
    return Outcome(output, plain_version(diff.b), diff.commit_b, [f.path for f in diff.files],
                   details={"a": diff.a, "b": diff.b, "commit_a": diff.commit_a,
                            "additions": diff.additions, "deletions": diff.deletions})


def _approve(ctx: Context, repo, args) -> Outcome:
    tag, commit = resolve_version(repo, args.version)
    version = plain_version(tag)
    tag_object = repo[repo.references[f"refs/tags/{tag}"].target]
    tagger = getattr(getattr(tag_object, "tagger", None), "name", None)
    author = version_author(ctx.store_url, args.strategy, version, tagger)
    check_approver(ctx.actor, args.strategy, tag, author)
    if any(a.user == ctx.actor.user and a.commit == str(commit.id)
           for a in approvals_of(ctx.store_url, args.strategy, version)):
        raise VersioningError(f"strategy {args.strategy}: {ctx.actor.user} has approved {tag} already")
    output = {"strategy": args.strategy, "version": version, "tag": tag, "commit": str(commit.id),
              "approved_by": ctx.actor.user, "author": author}
    return Outcome(output, version, str(commit.id), flags={"approved_by": ctx.actor.user},
                   details={"author": author, "note": args.note})


def _promote(ctx: Context, repo, args) -> Outcome:
    tag, commit = resolve_version(repo, args.version)
    version = plain_version(tag)
    approval, author = required_approval(ctx.store_url, args.strategy, repo, tag, str(commit.id), ctx.actor,
                                         ctx.block.access_users, ctx.approval_required)
    change = promote(repo, tag, ctx.actor.user)
    approved_by = approval.user if approval else None
    return Outcome(_change_view(change, approved_by), version, change.commit,
                   flags={"approved_by": approved_by},
                   details={"from": change.previous_tag, "from_commit": change.previous_commit,
                            "author": author, "approval_audit_id": approval.audit_id if approval else None})


def _rollback(ctx: Context, repo, args) -> Outcome:
    current, history, source = production_commit(repo), reflog_history(repo), "reflog"
    if current is not None and rollback_target(history, current) is None:
        # no reflog (bare repository) or an expired one (runbook 000 troubleshooting expires reflogs)
        history, source = audit_history(ctx.store_url, args.strategy), "audit trail"
    change = rollback(repo, ctx.actor.user, history, source)
    return Outcome(_change_view(change, None), plain_version(change.tag), change.commit,
                   details={"from": change.previous_tag, "from_commit": change.previous_commit,
                            "source": change.source})


def _promotion_change_request(ctx: Context, strategy: str, outcome: Outcome, entry):
    """A promotion is a change (runbook 003): raised and marked implemented at once, approved by
    the promotion's own rules (`approval_required`), linked to the pointer move's audit entry. A
    rollback raises none: it returns to a version promoted (and recorded) before, in an incident."""
    view = outcome.output
    previous = view["previous"] or (view["previous_commit"] or "nothing")[:12]
    template = ChangeTemplate(
        title=f"Promote {strategy} {view['production']} to production", risk="medium",
        description=f"Production of {strategy} moves from {previous} to {view['production']} "
                    f"({view['commit'][:12]}).",
        implementation_plan="`tradeops strategy promote` moved the production pointer",
        rollback_plan=f"`tradeops strategy rollback {strategy}` moves production back")
    return raise_implemented_change(
        ctx.store_url, ctx.environment, template, ctx.actor, "strategy-promotion",
        {"audit_entries": [entry.id], "strategy": strategy, "commit": view["commit"],
         "from_commit": view["previous_commit"]}, approved_by=view["approved_by"])


def _change_view(change, approved_by: str | None) -> dict:
    return {"strategy": change.strategy, "action": change.action, "production": change.tag,
            "commit": change.commit, "previous": change.previous_tag, "previous_commit": change.previous_commit,
            "approved_by": approved_by, "source": change.source or None}


COMMANDS: dict[str, Callable[..., Outcome]] = {
    "version": _version, "versions": _versions, "diff": _diff, "approve": _approve, "promote": _promote,
    "rollback": _rollback,
}


# -- terminal output ---------------------------------------------------------------------------

def strategy_output_text(command: str, output: Any, args: argparse.Namespace) -> str:
    """A strategy command's result as lines for the terminal (--json prints it whole)."""
    tail = f"({output['execution_time_ms']} ms, {output['audit_trail_id']})"
    if command == "version":
        lines = [f"{output['strategy']} {output['tag']} on {output['branch']} at {output['commit'][:12]} {tail}"]
        lines += [f"  {c['change']:<8} {c['path']}" for c in output["changed_files"]]
        return "\n".join(lines)
    if command == "versions":
        if not output["versions"]:
            return f"{output['strategy']}: no versions"
        return "\n".join(f"{'*' if v['in_production'] else ' '} {v['tag']:<10} {v['date'][:16]}  {v['commit'][:12]}  "
                         f"{v['message'].splitlines()[0] if v['message'] else ''}" for v in output["versions"])
    if command == "diff":
        lines = [f"{output['strategy']} {output['a']}..{output['b']}: {len(output['files'])} files, "
                 f"+{output['additions']} -{output['deletions']}"]
        lines += [f"  {'-' if f['binary'] else f['additions']:>6} {'-' if f['binary'] else f['deletions']:>6}  "
                  f"{f['path']}" for f in output["files"]]
        if args.patch:
            lines += ["", output["patch"]]
        return "\n".join(lines)
    if command == "approve":
        return f"{output['approved_by']} approved {output['strategy']} {output['tag']} ({output['commit'][:12]}) {tail}"
    change = f", change request {output['change_request']}" if output.get("change_request") else ""
    return (f"{output['strategy']}: production {output['previous'] or '-'} -> {output['production']} "
            f"({output['commit'][:12]}){change} {tail}")
