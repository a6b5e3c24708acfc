"""What the command modules share: which environment a command acts on (applying its
configuration file first), `--set` overrides, running a flow and reporting its state, date bounds.
Command modules import this, never main.py or each other."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError

from flows.registry import severity_for
from tradeops.cli.config import load_config, parse_override
from tradeops.cli.environment_snapshot import config_sha256, read_snapshot, snapshot_of, write_snapshot
from tradeops.cli.result_text import render_result
from tradeops.errors import ConfigError, StoreUnavailable, UsageError
from tradeops.store.engine import store_unreachable
from tradeops.store.identity import identity_scoped
from tradeops.store.records import append_audit


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


def require_environment(name: str) -> None:
    """Without a config file the environment's blocks must already exist: say how to make them."""
    from blocks import TradeopsEnvironment

    try:
        TradeopsEnvironment.load(name)
    except ValueError:
        raise ConfigError(f"no tradeops environment {name!r} has been applied: run "
                          "`tradeops apply --config tradeops.toml` or pass --config") from None


def split_overrides(raw: list[str], params: Any) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """`--set` values: dotted names override the config, bare names are flow parameters."""
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


def validate_flow_parameters(flow_fn: Any, params: dict[str, Any]) -> None:
    """Each `--set` flow parameter against the flow function's annotation, with pydantic in the
    mode Prefect validates parameters in; a bad one exits 2 naming it, and no run is created."""
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


def require_store(flow_name: str, environment: str) -> None:
    """The environment's ops store answers before a run starts: a run that could record nothing
    is not started; the alert channels hear of it, and the command exits 1 saying why."""
    from blocks import TradeopsEnvironment
    from tasks.failure_alerts import notify_not_started

    reason = store_unreachable(TradeopsEnvironment.load(environment).store_url())
    if reason is None:
        return
    message = f"{flow_name} was not started: the ops store of environment {environment!r} does not answer: {reason}"
    notify_not_started(flow_name, environment, reason, severity=severity_for(flow_name))
    raise StoreUnavailable(message)


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
    from tradeops.cli.apply import authorize_change, plan_config, record_snapshot, save_config

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


def parse_range_bound(text: str, key: str, end: bool) -> datetime:
    """A date means its whole day (`--to` through its last second); a time is taken as given."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            if end and day == date.max:  # through the last day there is
                return datetime.max.replace(tzinfo=timezone.utc)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except ValueError:
        raise UsageError(f"{key} {text!r}: expected YYYY-MM-DD or an ISO 8601 time") from None
    except OverflowError:
        raise UsageError(f"{key} {text!r}: out of the range of dates (years 1-9999 in UTC)") from None


def lifecycle_environment(config: Path | None, requested_user: str | None = None):
    """(name, view) of the environment a lifecycle command acts on: the snapshot while it is
    current, else the blocks (applying the configuration file first, as `tradeops run` does, as
    the acting user: `requested_user` when they may be impersonated). A snapshot made from the
    same configuration is what applying it again would find unchanged, so the file is not applied
    then (an unchanged file writes nothing and appends nothing either way)."""
    path = resolve_config_path(config)
    config_hash = None
    if path is not None:
        loaded = load_config(path)
        name, config_hash = loaded.environment.name, config_sha256(loaded, path.resolve().parent)
    else:
        name = os.environ.get("TRADEOPS_ENVIRONMENT", "default")
    snapshot = read_snapshot(name, config_hash)
    if snapshot is not None:
        return name, snapshot
    environment = environment_for(config, quiet=True, requested_user=requested_user)  # writes a snapshot
    snapshot = read_snapshot(environment, config_hash)
    if snapshot is not None:
        return environment, snapshot
    from blocks import TradeopsEnvironment

    block = TradeopsEnvironment.load(environment)
    git_sets = block.git_sets()
    if path is None:
        write_snapshot(snapshot_of(block, git_sets, environment))  # the next command is fast again
    return environment, snapshot_of(block, git_sets, environment, keep_secret=True)
