"""The `tradeops` command: the contract users, deployments and the other flows rely on.

Exit codes: 0 the run Completed, 1 it Failed or Crashed, 2 invalid usage or configuration, 3 access denied
(a privileged flow run its acting user may not make ends Failed, and exits 3).
With `--json` the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import signal
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

from tradeops.cli_options import port_number
from tradeops.errors import ConfigError, StoreUnavailable, TradeopsError, UsageError
from tradeops.store.identity import identity_scoped

PREFECT_DEFAULTS = {
    # The first start of Prefect's ephemeral server creates its SQLite database and can be slow.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep its message, add the hint
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tradeops", description="Operations automation for trading platforms.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    flows = sub.add_parser("flows", help="list every flow, its deployment and schedule")
    flows.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="run a flow now")
    run.add_argument("flow")
    run.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="dotted config key (offsite.url=...) or flow parameter (dry_run=true)")
    run.add_argument("--user", help="act as this user (needs access.impersonate; default: $TRADEOPS_USER, else the "
                                     "user your OS login maps to in [access] logins)")
    run.add_argument("--json", action="store_true")

    serve = sub.add_parser("serve", help="serve every deployment on its schedule from this process (starts a "
                                         "local Prefect server with its scheduler unless PREFECT_API_URL is set)")
    serve.add_argument("--config", type=Path)
    serve.add_argument("--port", type=port_number, help="port of the local Prefect server (default 4200, else a free one)")
    serve.add_argument("--schedule", dest="schedules", action="append", default=[], metavar="DEPLOYMENT=CRON",
                       help="run a deployment on another cron (UTC) for this serve, e.g. "
                            "daily-backup-0200='30 1 * * *'")

    apply = sub.add_parser("apply", help="validate a tradeops.toml and upsert its blocks")
    apply.add_argument("--config", type=Path, required=True)
    apply.add_argument("--check", action="store_true", help="validate only, save nothing")
    apply.add_argument("--user", help="act as this user (needs access.impersonate; default: the user your OS "
                                       "login maps to in [access] logins)")

    sandbox = sub.add_parser("sandbox", help="a generated trading platform to operate on")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, parser_class=_Parser)
    create = sandbox_sub.add_parser("create", help="build a sandbox platform in DIR")
    create.add_argument("dir", type=Path)
    create.add_argument("--database-url", help="PostgreSQL URL for the platform database (else SQLite)")
    create.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    create.add_argument("--seed", type=int, default=7)

    db = sub.add_parser("db", help="the ops store")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    upgrade = db_sub.add_parser("upgrade", help="migrate the ops store to the newest schema")
    upgrade.add_argument("--url", help="default: $TRADEOPS_DATABASE_URL or ./var/ops.db")

    logs = sub.add_parser("logs", help="archived platform logs")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True, parser_class=_Parser)
    retrieve = logs_sub.add_parser("retrieve", help="the archived lines of one log type in a time range")
    retrieve.add_argument("--from", dest="start", required=True, metavar="DATE",
                          help="YYYY-MM-DD (from its first second) or an ISO time, UTC unless it says otherwise")
    retrieve.add_argument("--to", dest="end", required=True, metavar="DATE",
                          help="YYYY-MM-DD (through its last second) or an ISO time (exclusive)")
    retrieve.add_argument("--type", dest="log_type", required=True, metavar="NAME", help="e.g. trading, risk, api")
    retrieve.add_argument("--out", type=Path, required=True, metavar="DIR")
    retrieve.add_argument("--target", help="only this log directory (its name in tradeops.toml)")
    retrieve.add_argument("--config", type=Path)
    retrieve.add_argument("--json", action="store_true")

    from tradeops.audit_cli import add_audit_parser
    from tradeops.change_cli import add_change_parser
    from tradeops.experiment_cli import add_experiment_parser
    from tradeops.incident_cli import add_incident_parser
    from tradeops.metrics_cli import add_metrics_parser
    from tradeops.server_cli import add_server_parser
    from tradeops.strategy_cli import add_strategy_parser

    add_experiment_parser(sub, _Parser)
    add_strategy_parser(sub, _Parser)
    add_audit_parser(sub, _Parser)
    add_incident_parser(sub, _Parser)
    add_metrics_parser(sub, _Parser)
    add_server_parser(sub, _Parser)
    add_change_parser(sub, _Parser)

    sub.add_parser("wal", help="PostgreSQL's archive_command and restore_command (tradeops wal --help)",
                   add_help=False)

    quick = sub.add_parser("quickstart", help="sandbox + apply + the daily flows (what `make run` does)")
    quick.add_argument("--dir", type=Path, default=Path("var/sandbox"))
    quick.add_argument("--database-url")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["wal"]:  # archive_command and restore_command: once per WAL segment, so nothing else loads
        from tradeops.wal.cli import main as wal_main

        return wal_main(argv[1:])
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TradeopsError as exc:
        print(f"tradeops: {exc}", file=sys.stderr)
        if getattr(args, "json", False) and args.command == "run":  # the last line is still the result
            print(json.dumps({"flow": args.flow, "flow_run_id": None, "state": "NotStarted", "message": str(exc),
                              "result": {"error": str(exc)}, "exit_code": exc.exit_code}))
        return exc.exit_code


# -- commands ------------------------------------------------------------------------------------

def cmd_flows(args: argparse.Namespace) -> int:
    from deployments.calendar import scheduled_jobs
    from flows import FLOWS

    jobs = scheduled_jobs()
    rows = [
        {"flow": name, "deployments": [
            {"name": j.deployment, "cron": j.cron, "day_or": j.day_or, "timezone": "UTC", "source": j.source}
            for j in jobs if j.flow == name]}
        for name in FLOWS
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        schedules = "; ".join(f"{d['name']}: {d['cron']} UTC" for d in row["deployments"]) or "on demand"
        print(f"{row['flow']:<24} {schedules}")
    return 0


def resolve_config_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    if os.environ.get("TRADEOPS_CONFIG"):
        return Path(os.environ["TRADEOPS_CONFIG"])
    default = Path("tradeops.toml")
    return default if default.is_file() else None


def environment_for(config: Path | None, quiet: bool = False, requested_user: str | None = None) -> str:
    """The environment a command acts on: the config file's (applied first when it changes
    anything, as the acting user), else $TRADEOPS_ENVIRONMENT or `default`, which must have been
    applied before."""
    config_path = resolve_config_path(config)
    if config_path is not None:
        return apply_file(config_path, quiet=quiet, requested_user=requested_user)
    environment = os.environ.get("TRADEOPS_ENVIRONMENT", "default")
    require_environment(environment)
    return environment


def split_overrides(raw: list[str], params: Any) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """`--set` values: dotted names override the config, bare names are flow parameters."""
    from tradeops.config import parse_override

    dotted, bare = [], {}
    for item in raw:
        key, value = parse_override(item)
        if "." in key:
            dotted.append((key, value))
        elif key in params:
            bare[key] = value
        else:
            known = ", ".join(params) or "none"
            raise UsageError(f"--set {key}: unknown name; flow parameters are: {known}; "
                             "configuration keys are dotted (offsite.url=...)")
    return dotted, bare


@identity_scoped
def cmd_run(args: argparse.Namespace) -> int:
    from prefect import tags

    from blocks import TradeopsEnvironment
    from flows import FLOWS, load_flow
    from tasks.access import cli_actor
    from tasks.environment import IMPERSONATOR_TAG, USER_TAG

    if args.flow not in FLOWS:
        raise UsageError(f"unknown flow {args.flow!r}; flows: {', '.join(FLOWS)}")
    flow_fn = load_flow(args.flow)
    parameters = inspect.signature(flow_fn.fn).parameters
    dotted, params = split_overrides(args.overrides, parameters)
    validate_flow_parameters(flow_fn, params)  # before anything is applied or any run is created
    config_path = resolve_config_path(args.config)
    if config_path is None and dotted:
        raise UsageError("--set with a dotted key needs --config (or ./tradeops.toml)")
    if config_path is not None:
        environment = apply_file(config_path, dotted, quiet=args.json, requested_user=args.user)
        environment = params.setdefault("environment", environment)
    else:
        environment = params.setdefault("environment", os.environ.get("TRADEOPS_ENVIRONMENT", "default"))
    require_environment(environment)
    require_store(args.flow, environment)
    # the flow acts as the command's user, and its run says so in the UI: tags user:<name>
    actor = cli_actor(TradeopsEnvironment.load(environment), args.user, "flow_run", environment)
    run_tags = [USER_TAG + actor.user]
    if actor.identity.impersonated_by:
        run_tags.append(IMPERSONATOR_TAG + actor.identity.impersonated_by)
    with tags(*run_tags):
        state = run_flow(flow_fn, params)
    return report_run(args.flow, state, as_json=args.json)


def require_store(flow_name: str, environment: str) -> None:
    """The environment's ops store answers before a run starts: a run that could record nothing
    is not started; the alert channels hear of it, and the command exits 1 saying why."""
    from blocks import TradeopsEnvironment
    from flows.registry import severity_for
    from tasks.failure_alerts import notify_not_started
    from tradeops.store.engine import store_unreachable

    reason = store_unreachable(TradeopsEnvironment.load(environment).store_url())
    if reason is None:
        return
    message = f"{flow_name} was not started: the ops store of environment {environment!r} does not answer: {reason}"
    notify_not_started(flow_name, environment, reason, severity=severity_for(flow_name))
    raise StoreUnavailable(message)


def validate_flow_parameters(flow_fn: Any, params: dict[str, Any]) -> None:
    """Each `--set` flow parameter against the flow function's annotation, with pydantic in the
    mode Prefect validates parameters in; a bad one exits 2 naming it, and no run is created."""
    from typing import get_type_hints

    from pydantic import ConfigDict, TypeAdapter, ValidationError

    hints = get_type_hints(flow_fn.fn)
    problems = []
    for name, value in params.items():
        if name not in hints:
            continue
        try:
            TypeAdapter(hints[name], config=ConfigDict(arbitrary_types_allowed=True)).validate_python(value)
        except ValidationError as exc:
            reasons = "; ".join(dict.fromkeys(error["msg"] for error in exc.errors(include_url=False)))
            problems.append(f"--set {name}={value!r}: {reasons} (the flow's {name} is {_type_name(hints[name])})")
    if problems:
        raise UsageError("invalid flow parameter(s):\n" + "\n".join(problems))


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def require_environment(name: str) -> None:
    """Without a config file the environment's blocks must already exist: say how to make them."""
    from blocks import TradeopsEnvironment

    try:
        TradeopsEnvironment.load(name)
    except ValueError:
        raise ConfigError(f"no tradeops environment {name!r} has been applied: run "
                          "`tradeops apply --config tradeops.toml` or pass --config") from None


def run_flow(flow_fn: Any, params: dict[str, Any]) -> Any:
    from prefect.exceptions import ParameterTypeError

    try:
        return flow_fn(**params, return_state=True)
    except ParameterTypeError as exc:
        raise UsageError(f"invalid flow parameter: {exc}") from None


def state_result(state: Any) -> dict[str, Any]:
    try:
        data = state.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - a result that cannot be read is reported, not raised
        return {"error": f"{type(exc).__name__}: {exc}"}
    from tasks.reporting import FlowFailed

    if isinstance(data, FlowFailed):  # a Failed run's report
        return data.result
    if isinstance(data, BaseException):
        return {"error": f"{type(data).__name__}: {data}"}
    return data if isinstance(data, dict) else {"value": data}


def report_run(flow_name: str, state: Any, as_json: bool) -> int:
    result = state_result(state)
    flow_run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    if as_json:
        print(json.dumps({"flow": flow_name, "flow_run_id": flow_run_id, "state": state.name,
                          "message": state.message, "result": result}, default=str))
    else:
        from tradeops.render import render_result

        print(render_result(flow_name, state.name, state.message, result, flow_run_id))
    if state.is_completed():
        return 0
    from tasks.reporting import DENIED

    return 3 if result.get(DENIED) else 1  # a run its acting user may not make: access denied


@identity_scoped
def apply_file(path: Path, overrides: list[tuple[str, Any]] = (), quiet: bool = False,
               check_only: bool = False, requested_user: str | None = None) -> str:
    """Validate a config file and save the blocks it changes, as the acting user (the login's, or
    `requested_user` when they may be impersonated), who must hold `config.change` to change an
    environment with access control; audited with every key's old and new value. A file that
    changes nothing saves no block and appends nothing (it writes the environment snapshot the
    lifecycle commands read only when there is no current one of this file)."""
    from tradeops.apply import authorize_change, plan_config, record_snapshot, save_config
    from tradeops.config import load_config
    from tradeops.store.records import append_audit

    config = load_config(path, overrides)
    environment = config.environment.name
    plan = plan_config(config, path)  # every check, before anything is written
    if check_only:
        return environment
    if plan.change.unchanged:
        record_snapshot(plan)
        if not quiet:
            print(f"{path}: environment {environment!r} unchanged, nothing applied", file=sys.stderr)
        return environment
    source = str(path.resolve())
    stores = [plan.environment.store_url()]
    if not plan.change.created:  # the trail it was applied to records the change (the store may move)
        from blocks import TradeopsEnvironment

        stores.insert(0, TradeopsEnvironment.load(environment).store_url())
    actor = authorize_change(plan, requested_user, source)  # before anything is written
    applied = save_config(plan, path)
    details = {"config": source, "environment": environment, "created": plan.change.created, "role": actor.role,
               "blocks": [a.name for a in applied], "overrides": [k for k, _ in overrides],
               "changes": plan.change.recorded()}
    for store in dict.fromkeys(stores):
        append_audit(store, "config_apply", actor.user, details=details)
    if not quiet:
        print(f"applied {path}: environment {environment!r}, {len(applied)} block(s) changed", file=sys.stderr)
    return environment


def cmd_apply(args: argparse.Namespace) -> int:
    environment = apply_file(args.config, check_only=args.check, requested_user=args.user)
    print(f"{args.config}: valid (environment {environment!r})" if args.check
          else f"environment {environment!r} applied; run flows with --set environment={environment}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the calendar from this process until SIGTERM or Ctrl-C. On the embedded default (no
    PREFECT_API_URL) a local Prefect server with its scheduler runs beside it, and stops with it."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    from deployments.calendar import served_deployments
    from tradeops.local_server import local_prefect_server

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


def cmd_sandbox(args: argparse.Namespace) -> int:
    from tradeops.sandbox_setup import build_sandbox

    platform, config_path = build_sandbox(args.dir, args.database_url, args.scale, args.seed)
    print(f"sandbox platform in {platform.directory} ({args.scale}); database {platform.database_url}")
    print(f"configuration: {config_path}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from tradeops.config import store_url
    from tradeops.store.engine import STORE_URL_ENV, resolve_store_url, upgrade

    url = args.url or resolve_store_url()  # an explicit --url wins over $TRADEOPS_DATABASE_URL
    given = "--url" if args.url else STORE_URL_ENV if os.environ.get(STORE_URL_ENV) else "the default ops store"
    try:
        store_url(url)
    except ValueError as exc:
        raise UsageError(f"{given}: {exc}") from None
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(f"{given}: cannot open the ops store: {reason}") from None
    print("ops store at the newest schema")
    return 0


def parse_range_bound(text: str, key: str, end: bool) -> "datetime":
    """A date means its whole day (`--to` through its last second); a time is taken as given."""
    from datetime import date, datetime, timedelta, timezone

    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{key} {text!r}: expected YYYY-MM-DD or an ISO 8601 time") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def cmd_logs(args: argparse.Namespace) -> int:
    from tasks.logs.index import log_types
    from tasks.logs.retrieve import RetrievalError, retrieve_logs
    from tasks.logs.sources import archive_reader

    start, end = parse_range_bound(args.start, "--from", False), parse_range_bound(args.end, "--to", True)
    if start >= end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    environment = environment_for(args.config, quiet=True)
    from blocks import TradeopsEnvironment

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


def cmd_experiment(args: argparse.Namespace) -> int:
    from tradeops.experiment_cli import cmd_experiment as run

    return run(args)


def cmd_strategy(args: argparse.Namespace) -> int:
    from tradeops.strategy_cli import cmd_strategy as run

    return run(args)


def cmd_audit(args: argparse.Namespace) -> int:
    from tradeops.audit_cli import cmd_audit as run

    return run(args)


def cmd_change(args: argparse.Namespace) -> int:
    from tradeops.change_cli import cmd_change as run

    return run(args)


def cmd_incident(args: argparse.Namespace) -> int:
    from tradeops.incident_cli import cmd_incident as run

    return run(args)


def cmd_metrics(args: argparse.Namespace) -> int:
    from tradeops.metrics_cli import cmd_metrics as run

    return run(args)


def cmd_server(args: argparse.Namespace) -> int:
    from tradeops.server_cli import cmd_server as run

    return run(args)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from tradeops.quickstart import quickstart

    return quickstart(args.dir, args.database_url)


COMMANDS = {
    "flows": cmd_flows, "run": cmd_run, "serve": cmd_serve, "apply": cmd_apply,
    "sandbox": cmd_sandbox, "db": cmd_db, "logs": cmd_logs, "experiment": cmd_experiment, "strategy": cmd_strategy, "audit": cmd_audit,
    "incident": cmd_incident,
    "metrics": cmd_metrics, "server": cmd_server, "quickstart": cmd_quickstart,
    "change": cmd_change,
}

if __name__ == "__main__":
    raise SystemExit(main())
