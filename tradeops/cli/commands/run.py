"""`tradeops run FLOW`: run a flow now, as the command's user."""

from __future__ import annotations

import argparse
import inspect
import os
from pathlib import Path

from prefect import tags

from blocks import TradeopsEnvironment
from flows import FLOWS, load_flow
from tasks.access import cli_actor
from tasks.environment import IMPERSONATOR_TAG, USER_TAG
from tradeops.cli.common import (
    apply_file, report_run, require_environment, require_store, resolve_config_path, run_flow, split_overrides,
    validate_flow_parameters,
)
from tradeops.errors import UsageError
from tradeops.store.identity import identity_scoped


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    parser.add_argument("flow")
    parser.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="dotted config key (offsite.url=...) or flow parameter (dry_run=true)")
    parser.add_argument("--user", help="act as this user (needs access.impersonate; default: $TRADEOPS_USER, else the "
                                        "user your OS login maps to in [access] logins)")
    parser.add_argument("--json", action="store_true")


@identity_scoped
def run(args: argparse.Namespace) -> int:
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
