"""`tradeops experiment ...`: an A/B experiment's lifecycle from the command line, and ad hoc
evaluation of a trades file.

create, start, list, show, conclude and rollback act on the environment's ops store; each is
checked against the role table (tasks/access.py: permission, capital and duration limits) and
audited, denials included (exit 3). `evaluate --trades FILE` needs no environment and records
nothing.

The commands read the environment from the snapshot `tradeops apply` writes
(tradeops/cli/environment_snapshot.py) and so never import Prefect or start its server while the
snapshot is current; otherwise they load the blocks as before, which refreshes it.

`conclude --action promote` moves the strategy's production pointer to the variant's version
(tasks/strategies/versioning.py), only when the latest evaluation, at most two days old, said
promote, or on an explicit override (`--override --note WHY`, experiment.override: system
administrators), and with the approval `[strategies] approval_required` asks for.
`experiment rollback` moves production back to where that promotion found it.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tasks.access import AccessDenied, LimitRefused, audited_refusal, cli_actor, refusal_details
from tasks.changes import ChangeTemplate, raise_implemented_change
from tasks.experiments.capital import capital_findings
from tasks.experiments.formatting import count, p_value, percent
from tasks.experiments.lifecycle import (
    DEFAULT_DURATION_DAYS, arm_capital_pct, conclude_experiment, create_experiment, evaluations_of, find_experiment,
    list_experiments, parse_capital, parse_params, parse_split, production_record, promotion_evidence,
    record_production, require_running, start_experiment,
)
from tradeops.cli.common import lifecycle_environment
from tradeops.cli.options import add_environment_options, bounded
from tradeops.errors import TradeopsError, UsageError
from tradeops.store import Experiment
from tradeops.store.identity import identity_scoped
from tradeops.store.records import append_audit


PERMISSIONS = {"create": "experiment.create", "start": "experiment.start", "list": "experiment.read",
               "show": "experiment.read", "conclude": "experiment.stop", "rollback": "experiment.stop",
               "override": "experiment.override"}  # conclude --override: promote against the evaluation
PRODUCTION_PERMISSION = "git.merge"  # moving the production pointer, as `tradeops strategy promote|rollback`
READ_ONLY = ("list", "show")  # no audit entry when they succeed
REQUEST_FIELDS = ("experiment", "strategy", "version", "capital", "split", "duration_days", "name", "action",
                  "override", "note", "status")


def add_arguments(experiment: argparse.ArgumentParser, parser_class: type) -> None:
    commands = experiment.add_subparsers(dest="experiment_command", required=True, parser_class=parser_class)

    common = add_environment_options
    create = common(commands.add_parser("create", help="a new experiment, as a draft"))
    create.add_argument("--strategy", required=True, help="a strategy repository of the environment's git sets")
    create.add_argument("--version", help="the strategy version (tag) the variant runs; promotion deploys it")
    create.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                        help="a variant parameter (repeat); values are JSON when they parse as JSON")
    create.add_argument("--split", default="90/10", help="control/variant percent of traffic (default 90/10)")
    create.add_argument("--capital", required=True, help="the experiment's capital: USD, or a percentage like 5%%")
    create.add_argument("--duration-days", type=bounded(int, 1, 3650, " days"), default=None, help="default 28")
    create.add_argument("--name", help="default: <strategy>-<first param>-<date>")
    for name, text in (("start", "start a draft"), ("show", "one experiment and its evaluations"),
                       ("rollback", "move production back to where the experiment's promotion found it")):
        common(commands.add_parser(name, help=text)).add_argument("experiment", help="id or name")
    listing = common(commands.add_parser("list", help="experiments of the environment"))
    listing.add_argument("--status", choices=["draft", "running", "concluded"])
    conclude = common(commands.add_parser("conclude", help="end a running experiment"))
    conclude.add_argument("experiment", help="id or name")
    conclude.add_argument("--action", required=True, choices=["promote", "rollback"])
    conclude.add_argument("--version", help="promote: the variant's version, when the experiment does not name it")
    conclude.add_argument("--override", action="store_true",
                          help="promote although no recent evaluation says promote (experiment.override; needs --note)")
    conclude.add_argument("--note", default="")
    evaluate = commands.add_parser("evaluate", help="evaluate a trades file (CSV or Parquet) now; records nothing")
    evaluate.add_argument("--trades", type=Path, required=True,
                          help="columns trade_id, group, pnl, ts (and pre_pnl, each trade's pre-period PnL: CUPED)")
    evaluate.add_argument("--split", default="90/10")
    evaluate.add_argument("--fixed-horizon", action="store_true",
                          help="decide on the fixed-horizon Welch test (valid for one look only)")
    evaluate.add_argument("--json", action="store_true")


@identity_scoped
def run(args: argparse.Namespace) -> int:
    if args.experiment_command == "evaluate":
        return evaluate_file(args)
    environment, env = lifecycle_environment(args.config, args.user)
    return run_lifecycle_command(env, environment, args)


@identity_scoped
def run_lifecycle_command(env, environment: str, args: argparse.Namespace) -> int:
    """Check the actor (the OS login's user, or an allowed impersonation) and their role, act,
    audit (refusals too; a read-only command that succeeds appends nothing), print. `env` is the
    environment's snapshot view or its block: the same attribute names."""
    store_url = env.store_url()
    command = args.experiment_command
    operation = f"experiment_{command}"
    actor = cli_actor(env, args.user, operation, environment)
    started = time.perf_counter()  # runbook 000 times creation and capital allocation (metrics)
    try:
        output, details = LIFECYCLE[command](env, store_url, environment, actor, args)
    except TradeopsError as exc:  # denied (role, its capital or duration limit: exit 3), over the capital limits (2)
        if audited_refusal(exc):
            append_audit(store_url, operation, actor.user, success=False, execution_time_ms=_elapsed_ms(started),
                         details={**refusal_details(exc), "role": actor.role, "environment": environment,
                                  **refused_request(args)})
        raise
    if command not in READ_ONLY:
        append_audit(store_url, operation, actor.user, execution_time_ms=_elapsed_ms(started),
                     details={"role": actor.role, **details})
    print(json.dumps(output, default=str) if args.json else experiment_output_text(command, output))
    return 0


def refused_request(args: argparse.Namespace) -> dict:
    """What was asked, as given, so the entry of a refusal says what was refused."""
    return {"request": {name: getattr(args, name) for name in REQUEST_FIELDS if hasattr(args, name)}}


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _strategy_repository(env, strategy: str):
    from tasks.strategies.versioning import find_strategy_repository, open_repository  # pygit2: not for show/list

    return open_repository(find_strategy_repository(env.git_sets(), strategy))


def _create(env, store_url: str, environment: str, actor, args) -> tuple[Any, dict]:
    from tasks.strategies.versioning import resolve_version  # pygit2: not for show/list

    parse_split(args.split)
    params = parse_params(args.params)
    if not params:
        raise UsageError("--param: give at least one variant parameter (key=value)")
    capital = parse_capital(args.capital, env.experiments_total_capital_usd)
    duration = args.duration_days or DEFAULT_DURATION_DAYS  # --duration-days is bounded by its parser
    actor.require(PERMISSIONS["create"], capital_usd=capital.usd, duration_days=duration)
    repo = _strategy_repository(env, args.strategy)  # an unknown strategy is a usage error naming the known ones
    version = _plain_version(resolve_version(repo, args.version)[0]) if args.version else None
    planned = Experiment(environment=environment, name="", strategy=args.strategy, status="draft", split=args.split,
                         capital_pct=capital.pct, duration_days=duration, created_by=actor.user)
    refuse_over_capital_limits(store_url, environment, planned, statuses=("draft", "running"))
    name = args.name or f"{args.strategy}-{next(iter(params))}-{datetime.now(timezone.utc):%Y%m%d%H%M}"
    row = create_experiment(store_url, environment, name, args.strategy, params, args.split, capital, duration,
                            actor.user, variant_version=version)
    return experiment_view(row), {"experiment": row.name, "id": row.id, "capital_pct": row.capital_pct,
                                  "split": row.split, "variant_params": params, "variant_version": version}


def refuse_over_capital_limits(store_url: str, environment: str, planned, statuses: tuple[str, ...]) -> None:
    """Runbook 000's limits (10% per experiment, 5% per strategy version) with the experiments in
    `statuses` and `planned` together; over them is a usage error (exit 2): nothing is created or
    started, and the caller audits the refusal."""
    others = [r for r in list_experiments(store_url, environment) if r.status in statuses and r.id != planned.id]
    breaches = capital_findings(planned.capital_pct, arm_capital_pct(planned.strategy, [*others, planned]))
    if breaches:
        raise LimitRefused(f"capital limits (runbook 000) for {planned.name or 'the new experiment'}: "
                           + "; ".join(breaches))


def _start(env, store_url, environment, actor, args):
    from tasks.strategies.versioning import VersioningError, production_commit, tag_for  # pygit2: not for show/list

    row = find_experiment(store_url, environment, args.experiment)
    actor.require(PERMISSIONS["start"], capital_usd=row.capital_usd, duration_days=row.duration_days)
    refuse_over_capital_limits(store_url, environment, row, statuses=("running",))
    try:
        repo = _strategy_repository(env, row.strategy)
        current = production_commit(repo)
        control = {"commit": current, "tag": tag_for(repo, current)}
    except VersioningError:
        control = None  # a platform strategy outside the git sets: nothing to record
    row = start_experiment(store_url, row, actor.user, control=control)
    return experiment_view(row), {"experiment": row.name, "id": row.id, "control": control}


def _list(env, store_url, environment, actor, args):
    actor.require(PERMISSIONS["list"])
    return [experiment_view(r) for r in list_experiments(store_url, environment, args.status)], {}


def _show(env, store_url, environment, actor, args):
    actor.require(PERMISSIONS["show"])
    row = find_experiment(store_url, environment, args.experiment)
    evaluations = [{"evaluated_at": e.evaluated_at, "decision": e.decision, "rule": e.rule, "p_value": e.p_value,
                    "lift": e.lift, "n_control": e.n_control, "n_variant": e.n_variant,
                    "flow_run_id": e.flow_run_id, "report": e.report}
                   for e in evaluations_of(store_url, row.id)]
    return {**experiment_view(row), "evaluations": evaluations}, {}


def _conclude(env, store_url, environment, actor, args):
    row = find_experiment(store_url, environment, args.experiment)
    if args.override:
        actor.require(PERMISSIONS["override"])
    actor.require(PERMISSIONS["conclude"])
    require_running(row, args.action)
    if args.override and args.action != "promote":
        raise UsageError("--override applies to --action promote only")
    if args.action == "promote":
        production, details = _promote_production(env, store_url, environment, actor, args, row)
    else:
        production, details = _keep_control(env, store_url, environment, actor, row)
    row = conclude_experiment(store_url, row, args.action, actor.user, args.note, production=production)
    return experiment_view(row), {"experiment": row.name, "id": row.id, "action": args.action, "note": args.note,
                                  **details}


def _promote_production(env, store_url, environment, actor, args, row) -> tuple[dict, dict]:
    """The evidence (or an audited override), the approval, then production -> the variant's version."""
    from tasks.strategies.audit import required_approval  # pygit2: not for show/list
    from tasks.strategies.versioning import promote, resolve_version

    actor.require(PRODUCTION_PERMISSION)
    evidence = promotion_evidence(store_url, row)
    if not evidence.allows:
        if not args.override:
            raise AccessDenied(f"promotion of {row.name!r} refused: {evidence.reason.rstrip('.')}. An administrator may promote "
                               f"anyway with --override --note WHY ({PERMISSIONS['override']}; audited)")
        if not args.note.strip():
            raise UsageError("--override needs --note saying why the evaluation is overridden")
    version = args.version or row.variant_version
    if not version:
        raise UsageError(f"experiment {row.name!r} names no variant version: pass --version (a tag of {row.strategy})")
    started = time.perf_counter()
    repo = _strategy_repository(env, row.strategy)
    tag, commit = resolve_version(repo, version)
    approval, author = required_approval(store_url, row.strategy, repo, tag, str(commit.id), actor, env.access_users,
                                         env.strategy_approval_required)
    change = promote(repo, tag, actor.user)
    override = not evidence.allows
    evaluation_id = evidence.evaluation.id if evidence.evaluation else None
    entry = _audit_production_move(store_url, environment, actor, "strategy_promote", row, change, started, env,
                                   {"approved_by": approval.user if approval else None, "override": override},
                                   {"author": author, "approval_audit_id": approval.audit_id if approval else None})
    request = _promotion_change_request(store_url, environment, actor, row, change, entry, evidence.reason,
                                        approval.user if approval else None)
    moved = {**_moved(change, actor), "evaluation_id": evaluation_id, "override": override,
             "change_request": request.number}
    return {"promoted": moved}, {"evidence": evidence.reason, "evaluation_id": evaluation_id, "override": override,
                                 "production": moved}


def _promotion_change_request(store_url, environment, actor, row, change, entry, evidence: str,
                              approved_by: str | None):
    """A promotion is a change (runbook 003): raised and marked implemented at once, approved by
    the promotion's own rules (the evaluation's evidence or an override, `approval_required`)."""
    template = ChangeTemplate(
        title=f"Promote {row.strategy} {change.tag} to production (experiment {row.name})", risk="medium",
        description=f"Production of {row.strategy} moves from {change.previous_tag or change.previous_commit} to "
                    f"{change.tag} ({change.commit[:12]}), the variant of experiment {row.name}. Why: {evidence}",
        implementation_plan="`tradeops experiment conclude --action promote` moved the production pointer",
        rollback_plan=f"`tradeops experiment rollback {row.name}` moves production back")
    return raise_implemented_change(
        store_url, environment, template, actor, "strategy-promotion",
        {"audit_entries": [entry.id], "experiment": row.name, "experiment_id": row.id, "strategy": row.strategy,
         "commit": change.commit, "from_commit": change.previous_commit}, approved_by=approved_by)


def _keep_control(env, store_url, environment, actor, row) -> tuple[dict, dict]:
    """Concluding without promotion: production stays at (or returns to) the control's version."""
    from tasks.strategies.versioning import VersioningError, production_commit, resolve_version, restore, tag_for  # pygit2: not for show/list

    try:
        repo = _strategy_repository(env, row.strategy)
    except VersioningError as exc:
        return {}, {"production": f"not checked: {exc}"}
    current = production_commit(repo)
    control = production_record(row).get("control") or {}
    try:
        variant = str(resolve_version(repo, row.variant_version)[1].id) if row.variant_version else None
    except VersioningError:  # its tag is gone: it cannot be what production runs by that name
        variant = None
    if current is None or current != variant or not control.get("commit"):
        kept = {"commit": current, "tag": tag_for(repo, current)}
        return {"kept": kept}, {"production": kept}
    actor.require(PRODUCTION_PERMISSION)
    started = time.perf_counter()
    change = restore(repo, control["commit"], current, actor.user)  # the variant reached production: back to control
    _audit_production_move(store_url, environment, actor, "strategy_rollback", row, change, started, env, {}, {})
    moved = _moved(change, actor)
    return {"rolled_back": moved}, {"production": moved}


def _rollback(env, store_url, environment, actor, args):
    """Undo the experiment's promotion: production back to the version it replaced."""
    from tasks.strategies.versioning import restore  # pygit2: not for show/list

    row = find_experiment(store_url, environment, args.experiment)
    actor.require(PERMISSIONS["rollback"])
    actor.require(PRODUCTION_PERMISSION)
    record = production_record(row)
    promoted = record.get("promoted")
    if row.conclusion != "promote" or not promoted:
        raise UsageError(f"experiment {row.name!r} was not promoted by `experiment conclude`: nothing to roll back")
    if record.get("rolled_back"):
        raise UsageError(f"experiment {row.name!r}: its promotion was rolled back already "
                         f"({record['rolled_back']['at']} by {record['rolled_back']['by']})")
    if not promoted.get("from_commit"):
        raise UsageError(f"experiment {row.name!r}: production had no version before the promotion, so there is "
                         f"nothing to move back to; promote another version with `tradeops strategy promote`")
    started = time.perf_counter()
    repo = _strategy_repository(env, row.strategy)
    change = restore(repo, promoted["from_commit"], promoted["to_commit"], actor.user)
    _audit_production_move(store_url, environment, actor, "strategy_rollback", row, change, started, env, {}, {})
    moved = _moved(change, actor)
    row = record_production(store_url, row, rolled_back=moved)
    return experiment_view(row), {"experiment": row.name, "id": row.id, "production": moved}


def _moved(change, actor) -> dict:
    """A production pointer move as the experiment records it."""
    return {"from_commit": change.previous_commit, "from_tag": change.previous_tag, "to_commit": change.commit,
            "to_tag": change.tag, "by": actor.user, "at": datetime.now(timezone.utc).isoformat()}


def _audit_production_move(store_url, environment, actor, operation, row, change, started, env, flags, details):
    """The pointer move as the strategy commands audit it (runbook 000's fields), naming the experiment,
    so `strategy versions` and `strategy rollback`'s audit-trail history see it."""
    return append_audit(store_url, operation, actor.user, strategy_name=row.strategy,
                        version=_plain_version(change.tag), repository_hash=change.commit,
                        execution_time_ms=_elapsed_ms(started),
                        compliance_flags={"sox_404": True, "change_control": True,
                                          "approval_required": bool(env.strategy_approval_required), **flags},
                        details={"role": actor.role, "environment": environment, "from": change.previous_tag,
                                 "from_commit": change.previous_commit, "experiment": row.name,
                                 "experiment_id": row.id, **details})


def _plain_version(tag: str | None) -> str | None:
    from tasks.strategies.versioning import SemVer  # pygit2: not for show/list

    parsed = SemVer.parse(tag) if tag else None
    return str(parsed) if parsed else tag


LIFECYCLE = {"create": _create, "start": _start, "list": _list, "show": _show, "conclude": _conclude,
             "rollback": _rollback}


def experiment_view(row) -> dict:
    return {"id": row.id, "name": row.name, "strategy": row.strategy, "status": row.status, "source": row.source,
            "split": row.split, "capital_pct": round(row.capital_pct, 4), "capital_usd": row.capital_usd,
            "duration_days": row.duration_days, "variant_params": json.loads(row.variant_params_json),
            "variant_version": row.variant_version,
            "created_by": row.created_by, "created_at": row.created_at, "started_at": row.started_at,
            "ends_at": row.ends_at, "conclusion": row.conclusion, "concluded_by": row.concluded_by,
            "production": json.loads(row.production_json or "{}")}


def experiment_output_text(command: str, output: Any) -> str:
    """An experiment command's result as lines for the terminal (--json prints it whole)."""
    if command == "list":
        if not output:
            return "no experiments"
        return "\n".join(f"{e['id']:>4}  {e['status']:<9} {e['name']:<40} {e['strategy']:<20} split {e['split']:<6} "
                         f"capital {e['capital_pct']:.2f}%" for e in output)
    lines = [f"{k}: {v}" for k, v in output.items() if k not in ("evaluations", "production")]
    for key, move in (output.get("production") or {}).items():
        if isinstance(move, dict):
            lines.append(f"production {key}: " + ", ".join(f"{k} {v}" for k, v in move.items() if v is not None))
    for e in output.get("evaluations", []):
        lines.append(f"  {e['evaluated_at']:%Y-%m-%d %H:%M} {e['decision']:<13} p={p_value(e['p_value'])} "
                     f"lift={percent(e['lift'], signed_=True)} n={count(e['n_control'])}/{count(e['n_variant'])}  "
                     f"{e['rule']}")
    return "\n".join(lines)


def evaluate_file(args: argparse.Namespace) -> int:
    """Ad hoc: the same data gate, statistics and decision as the flow, on a file."""
    from tasks.experiments.data_gate import DataGateFailed, gate_trades
    from tasks.experiments.evaluation import evaluate_trades
    from tasks.experiments.trades import TradesUnavailable, trades_from_file

    split = parse_split(args.split)
    try:
        trades = gate_trades(trades_from_file(args.trades))
        outcome = evaluate_trades(trades, split, sequential=not args.fixed_horizon)
    except (TradesUnavailable, DataGateFailed, ValueError) as exc:
        raise UsageError(f"{args.trades}: {exc}") from None
    if args.json:
        print(json.dumps(outcome.as_dict(), default=str))
    else:
        from tasks.experiments.report import statistics_markdown

        print(statistics_markdown(outcome))
    return 0
