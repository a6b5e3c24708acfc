"""`tradeops quickstart` (what `make run` calls): a sandbox platform, its blocks, the daily flows
(the flows whose FlowSpec has a `quickstart_order`, flows/registry.py).

The sandbox plants problems on purpose (an expired certificate, one expiring in 5 days; a FlowSpec's
`planted_failure`), so the health check ends Failed and names them: that is the check working. Quickstart exits 1 only when
a flow crashed or could not run at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect.settings import get_current_settings

from blocks import TradeopsEnvironment
from flows import FLOWS, load_flow
from flows.registry import quickstart_flows
from tradeops.cli.common import apply_file, report_run, run_flow
from tradeops.cli.sandbox_setup import build_sandbox


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    parser.add_argument("--dir", type=Path, default=Path("var/sandbox"))
    parser.add_argument("--database-url")


def run(args: argparse.Namespace) -> int:
    return quickstart(args.dir, args.database_url)


def quickstart(directory: Path, database_url: str | None = None) -> int:
    directory = directory.resolve()
    if not (directory / ".tradeops-sandbox").exists():
        print(f"building the sandbox platform in {directory} ...", flush=True)
        build_sandbox(directory, database_url, "small", 7)
    config = directory / "tradeops.toml"
    environment = apply_file(config)

    states = {}
    for spec in (s for s in quickstart_flows() if s.name in FLOWS):
        print(f"\n== {spec.name} ==", flush=True)
        state = run_flow(load_flow(spec.name), {"environment": environment})
        report_run(spec.name, state, as_json=False)
        if spec.planted_failure and state.is_failed():
            print(f"  note: {spec.planted_failure}; this Failed is the check doing its job.")
        states[spec.name] = state

    print_where_to_look(environment, config)
    crashed = [n for n, s in states.items() if not (s.is_completed() or s.is_failed())]
    return 1 if crashed else 0


def print_where_to_look(environment: str, config: Path) -> None:
    block = TradeopsEnvironment.load(environment)
    home = Path(get_current_settings().home).resolve()
    store = block.store_url()
    offsite = block.offsite()
    print(f"""
Where to look
  configuration     {config}
  run history       {home} (Prefect's database: flow runs, logs, artifacts)
  reports           {Path(block.data_dir) / 'reports'}
  backup sets       {Path(block.data_dir) / 'backups' / environment}
  ops store         {store}
  offsite storage   {offsite.describe() if offsite else '(none configured)'}
Read the audit trail as an auditor does (your login administers the sandbox; --user carol acts as its
compliance officer, both names recorded):
  .venv/bin/tradeops audit verify --config {config} --user carol
  .venv/bin/tradeops audit list --config {config} --operation config_apply
  .venv/bin/tradeops audit show 1 --config {config}
Open the Prefect UI on this history:
  PREFECT_HOME={home} .venv/bin/prefect server start
  then browse http://127.0.0.1:4200 (Runs, Artifacts, Blocks)""")
