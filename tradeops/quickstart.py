"""`tradeops quickstart` (what `make run` calls): a sandbox platform, its blocks, the daily flows.

The sandbox plants problems on purpose (an expired certificate, one expiring in 5 days), so the
health check ends Failed and names them: that is the check working. Quickstart exits 1 only when
a flow crashed or could not run at all.
"""

from __future__ import annotations

from pathlib import Path

from blocks import TradeopsEnvironment
from flows import FLOWS, load_flow
from tradeops.cli import apply_file, report_run, run_flow
from tradeops.sandbox_setup import build_sandbox

# The morning check first, then the daily operations in runbook order, as they come to exist.
# The day's jobs in order (daily-backup ends by verifying its set: verify-backups, a subflow), then
# a DR drill so a first run ends with the backup restored and proven.
DAILY_FLOWS = ("health-check", "daily-backup", "log-archival", "cert-check",
               "experiment-evaluation", "dr-drill", "audit-export")

# Flows that end Failed on the sandbox on purpose: it plants what they must catch.
PLANTED_FAILURES = {
    "health-check": "the sandbox plants an expired certificate and one expiring in 5 days",
    "cert-check": "the sandbox plants an expired certificate and one expiring in 5 days (no renew command is set)",
}


def quickstart(directory: Path, database_url: str | None = None) -> int:
    directory = directory.resolve()
    if not (directory / ".tradeops-sandbox").exists():
        print(f"building the sandbox platform in {directory} ...", flush=True)
        build_sandbox(directory, database_url, "small", 7)
    config = directory / "tradeops.toml"
    environment = apply_file(config)

    states = {}
    for name in (n for n in DAILY_FLOWS if n in FLOWS):
        print(f"\n== {name} ==", flush=True)
        state = run_flow(load_flow(name), {"environment": environment})
        report_run(name, state, as_json=False)
        if name in PLANTED_FAILURES and state.is_failed():
            print(f"  note: {PLANTED_FAILURES[name]}; this Failed is the check doing its job.")
        states[name] = state

    print_where_to_look(environment, config)
    crashed = [n for n, s in states.items() if not (s.is_completed() or s.is_failed())]
    return 1 if crashed else 0


def print_where_to_look(environment: str, config: Path) -> None:
    from prefect.settings import get_current_settings

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
