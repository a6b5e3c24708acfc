"""`tradeops experiment ...`: an A/B experiment's lifecycle from the command line, and ad hoc
evaluation of a trades file.

create, start, list, show and conclude act on the environment's ops store; each is checked
against the role table (tasks/access.py: permission, capital and duration limits) and audited,
denials included (exit 3). `evaluate --trades FILE` needs no environment and records nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from tradeops.cli_options import add_environment_options, bounded
from tradeops.errors import TradeopsError, UsageError
from tradeops.store.identity import identity_scoped

PERMISSIONS = {"create": "experiment.create", "start": "experiment.start", "list": "experiment.read",
               "show": "experiment.read", "conclude": "experiment.stop"}
REQUEST_FIELDS = ("experiment", "strategy", "capital", "split", "duration_days", "name", "action", "status")


def add_experiment_parser(sub: Any, parser_class: type) -> None:
    experiment = sub.add_parser("experiment", help="strategy A/B experiments")
    commands = experiment.add_subparsers(dest="experiment_command", required=True, parser_class=parser_class)

    common = add_environment_options
    create = common(commands.add_parser("create", help="a new experiment, as a draft"))
    create.add_argument("--strategy", required=True)
    create.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                        help="a variant parameter (repeat); values are JSON when they parse as JSON")
    create.add_argument("--split", default="90/10", help="control/variant percent of traffic (default 90/10)")
    create.add_argument("--capital", required=True, help="the experiment's capital: USD, or a percentage like 5%%")
    create.add_argument("--duration-days", type=bounded(int, 1, 3650, " days"), default=None, help="default 28")
    create.add_argument("--name", help="default: <strategy>-<first param>-<date>")
    for name, text in (("start", "start a draft"), ("show", "one experiment and its evaluations")):
        common(commands.add_parser(name, help=text)).add_argument("experiment", help="id or name")
    listing = common(commands.add_parser("list", help="experiments of the environment"))
    listing.add_argument("--status", choices=["draft", "running", "concluded"])
    conclude = common(commands.add_parser("conclude", help="end a running experiment"))
    conclude.add_argument("experiment", help="id or name")
    conclude.add_argument("--action", required=True, choices=["promote", "rollback"])
    conclude.add_argument("--note", default="")
    evaluate = commands.add_parser("evaluate", help="evaluate a trades file (CSV or Parquet) now; records nothing")
    evaluate.add_argument("--trades", type=Path, required=True, help="columns trade_id, group, pnl, ts")
    evaluate.add_argument("--split", default="90/10")
    evaluate.add_argument("--fixed-horizon", action="store_true",
                          help="decide on the fixed-horizon Welch test (valid for one look only)")
    evaluate.add_argument("--json", action="store_true")


@identity_scoped
def cmd_experiment(args: argparse.Namespace) -> int:
    if args.experiment_command == "evaluate":
        return evaluate_file(args)
    from tradeops.cli import environment_for

    return run_lifecycle_command(environment_for(args.config, quiet=True, requested_user=args.user), args)


def run_lifecycle_command(environment: str, args: argparse.Namespace) -> int:
    """Check the actor's role, act, audit (denials too), print."""
    from blocks import TradeopsEnvironment
    from tasks.access import audited_refusal, cli_actor, refusal_details
    from tradeops.store.records import append_audit

    block = TradeopsEnvironment.load(environment)
    store_url = block.store_url()
    command = args.experiment_command
    operation = f"experiment_{command}"
    actor = cli_actor(block, args.user, operation, environment)
    started = time.perf_counter()  # runbook 000 times creation and capital allocation (metrics)
    try:
        output, details = LIFECYCLE[command](block, store_url, environment, actor, args)
    except TradeopsError as exc:  # denied (role, its capital or duration limit: exit 3), over the capital limits (2)
        if audited_refusal(exc):
            append_audit(store_url, operation, actor.user, success=False, execution_time_ms=_elapsed_ms(started),
                         details={**refusal_details(exc), "role": actor.role, "environment": environment,
                                  **refused_request(args)})
        raise
    if command not in ("list", "show"):
        append_audit(store_url, operation, actor.user, execution_time_ms=_elapsed_ms(started),
                     details={"role": actor.role, **details})
    print(json.dumps(output, default=str) if args.json else render(command, output))
    return 0


def refused_request(args: argparse.Namespace) -> dict:
    """What was asked, as given, so the entry of a refusal says what was refused."""
    return {"request": {name: getattr(args, name) for name in REQUEST_FIELDS if hasattr(args, name)}}


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _create(block, store_url: str, environment: str, actor, args) -> tuple[Any, dict]:
    from datetime import datetime, timezone

    from tasks.experiments.lifecycle import (
        DEFAULT_DURATION_DAYS, create_experiment, parse_capital, parse_params, parse_split,
    )
    from tradeops.store import Experiment

    parse_split(args.split)
    params = parse_params(args.params)
    if not params:
        raise UsageError("--param: give at least one variant parameter (key=value)")
    capital = parse_capital(args.capital, block.experiments_total_capital_usd)
    duration = args.duration_days or DEFAULT_DURATION_DAYS
    if duration < 1:
        raise UsageError(f"--duration-days {duration}: must be at least 1")
    actor.require(PERMISSIONS["create"], capital_usd=capital.usd, duration_days=duration)
    planned = Experiment(environment=environment, name="", strategy=args.strategy, status="draft", split=args.split,
                         capital_pct=capital.pct, duration_days=duration, created_by=actor.user)
    refuse_over_capital_limits(store_url, environment, planned, statuses=("draft", "running"))
    name = args.name or f"{args.strategy}-{next(iter(params))}-{datetime.now(timezone.utc):%Y%m%d%H%M}"
    row = create_experiment(store_url, environment, name, args.strategy, params, args.split, capital, duration,
                            actor.user)
    return experiment_view(row), {"experiment": row.name, "id": row.id, "capital_pct": row.capital_pct,
                                  "split": row.split, "variant_params": params}


def refuse_over_capital_limits(store_url: str, environment: str, planned, statuses: tuple[str, ...]) -> None:
    """Runbook 000's limits (10% per experiment, 5% per strategy version) with the experiments in
    `statuses` and `planned` together; over them is a usage error (exit 2): nothing is created or
    started, and the caller audits the refusal."""
    from tasks.access import LimitRefused
    from tasks.experiments.decision import capital_findings
    from tasks.experiments.lifecycle import arm_capital_pct, list_experiments

    others = [r for r in list_experiments(store_url, environment) if r.status in statuses and r.id != planned.id]
    breaches = capital_findings(planned.capital_pct, arm_capital_pct(planned.strategy, [*others, planned]))
    if breaches:
        raise LimitRefused(f"capital limits (runbook 000) for {planned.name or 'the new experiment'}: "
                         + "; ".join(breaches))


def _start(block, store_url, environment, actor, args):
    from tasks.experiments.lifecycle import find_experiment, start_experiment

    row = find_experiment(store_url, environment, args.experiment)
    actor.require(PERMISSIONS["start"], capital_usd=row.capital_usd, duration_days=row.duration_days)
    refuse_over_capital_limits(store_url, environment, row, statuses=("running",))
    row = start_experiment(store_url, row, actor.user)
    return experiment_view(row), {"experiment": row.name, "id": row.id}


def _list(block, store_url, environment, actor, args):
    from tasks.experiments.lifecycle import list_experiments

    actor.require(PERMISSIONS["list"])
    return [experiment_view(r) for r in list_experiments(store_url, environment, args.status)], {}


def _show(block, store_url, environment, actor, args):
    from tasks.experiments.lifecycle import evaluations_of, find_experiment

    actor.require(PERMISSIONS["show"])
    row = find_experiment(store_url, environment, args.experiment)
    evaluations = [{"evaluated_at": e.evaluated_at, "decision": e.decision, "rule": e.rule, "p_value": e.p_value,
                    "lift": e.lift, "n_control": e.n_control, "n_variant": e.n_variant,
                    "flow_run_id": e.flow_run_id, "report": e.report}
                   for e in evaluations_of(store_url, row.id)]
    return {**experiment_view(row), "evaluations": evaluations}, {}


def _conclude(block, store_url, environment, actor, args):
    from tasks.experiments.lifecycle import conclude_experiment, find_experiment

    row = find_experiment(store_url, environment, args.experiment)
    actor.require(PERMISSIONS["conclude"])
    row = conclude_experiment(store_url, row, args.action, actor.user, args.note)
    return experiment_view(row), {"experiment": row.name, "id": row.id, "action": args.action, "note": args.note}


LIFECYCLE = {"create": _create, "start": _start, "list": _list, "show": _show, "conclude": _conclude}


def experiment_view(row) -> dict:
    return {"id": row.id, "name": row.name, "strategy": row.strategy, "status": row.status, "source": row.source,
            "split": row.split, "capital_pct": round(row.capital_pct, 4), "capital_usd": row.capital_usd,
            "duration_days": row.duration_days, "variant_params": json.loads(row.variant_params_json),
            "created_by": row.created_by, "created_at": row.created_at, "started_at": row.started_at,
            "ends_at": row.ends_at, "conclusion": row.conclusion, "concluded_by": row.concluded_by}


def render(command: str, output: Any) -> str:
    if command == "list":
        if not output:
            return "no experiments"
        return "\n".join(f"{e['id']:>4}  {e['status']:<9} {e['name']:<40} {e['strategy']:<20} split {e['split']:<6} "
                         f"capital {e['capital_pct']:.2f}%" for e in output)
    lines = [f"{k}: {v}" for k, v in output.items() if k != "evaluations"]
    for e in output.get("evaluations", []):
        lines.append(f"  {e['evaluated_at']:%Y-%m-%d %H:%M} {e['decision']:<13} p={e['p_value']} lift={e['lift']} "
                     f"n={e['n_control']}/{e['n_variant']}  {e['rule']}")
    return "\n".join(lines)


def evaluate_file(args: argparse.Namespace) -> int:
    """Ad hoc: the same data gate, statistics and decision as the flow, on a file."""
    from tasks.experiments.data_gate import DataGateFailed, gate_trades
    from tasks.experiments.evaluation import evaluate_trades
    from tasks.experiments.lifecycle import parse_split
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

