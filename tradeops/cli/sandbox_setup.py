"""`tradeops sandbox create`: build the platform and write the `tradeops.toml` that operates it."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from tradeops.files import atomic_write_text
from tradeops.errors import ConfigError
from tradeops.store.identity import os_login
from tradeops.sandbox import SandboxError, SandboxPlatform, create_sandbox

SANDBOX_TOML = """\
# tradeops environment for the generated sandbox platform in this folder.
# Paths are relative to this file. Apply with: tradeops apply --config {config}
[environment]
name = "sandbox"
description = "Generated sandbox trading platform ({scale}, seed {seed})"
data_dir = "ops"                     # reports, local backup sets, ops.db

[ops_store]
url = "sqlite:///ops/ops.db"         # TRADEOPS_DATABASE_URL overrides this

[offsite]
url = "file://{offsite}"

[[databases]]
name = "platform"
url = "{database_url}"
freshness_table = "regime_history"
freshness_column = "ts"
queue_table = "order_queue"          # deep health check: its depth and oldest waiting order

[[git]]
name = "strategies"
root = "repos"

[[logs]]
name = "platform"
path = "logs"
pattern = "*.log"

[[certificates]]
name = "tls"
directory = "certs"
ca_file = "certs/ca/sandbox-ca.pem"      # the sandbox CA that issued them
hostnames = {{ "valid-1y.pem" = ["api.tradeops.local"], "expiring-25d.pem" = ["risk.tradeops.local"] }}

[[configs]]
name = "platform-config"
paths = ["config"]

[[applications]]
# a Python application with pinned requirements; dependency-update reads the index and advisories
# as recorded here and installs from the wheelhouse (nothing online)
name = "pricing-service"
path = "apps/pricing-service"
wheelhouse = "apps/wheelhouse"
index_versions_file = "apps/index/versions.json"
advisories_file = "apps/advisories/osv.json"

[[alerts]]
name = "run-log"
kind = "log"
min_severity = "medium"

[health]
disk_paths = ["."]

# the platform's API process (tradeops/sandbox/api_server.py); `start` is its supervisor command
[[processes]]
name = "api"
pid_file = "run/api.pid"
health_url = "http://127.0.0.1:{api_port}/health"
request_log = "run/api-requests.log"
circuit_breaker_file = "run/circuit-breaker.open"
start_command = ["{python}", "-m", "tradeops.sandbox.api_server", "start", "--port", "{api_port}", "--pid-file", "{directory}/run/api.pid", "--request-log", "{directory}/run/api-requests.log", "--circuit-breaker-file", "{directory}/run/circuit-breaker.open"]

# runbook 001 "Remediation Matrix": the sandbox acts on what the health check finds
[remediation]
enabled = true
dry_run = false

[experiments]
database = "platform"
# the trades of one experiment, named :experiment; pre_pnl (optional): each trade's pre-period PnL, for CUPED
trades_query = '''
SELECT t.trade_id, t.grp AS "group", t.pnl, t.ts, t.pre_pnl
FROM trades t JOIN experiments e ON e.experiment_id = t.experiment_id
WHERE e.experiment_name = :experiment
'''
# experiments the platform runs: registered in the ops store, evaluated daily
discover_query = '''
SELECT e.experiment_name AS name, s.name AS strategy, e.split, e.capital_allocation_pct AS capital_pct,
       e.start_date, e.end_date, e.control_params, e.variant_params
FROM experiments e JOIN strategies s ON s.strategy_id = e.strategy_id
WHERE e.status = 'active'
'''
total_capital_usd = 100000000

[access]
# runbook 000's example users (rbac.yml); runs not started by `tradeops run` (schedules, workers) act as svc-prefect
users = {{ alice = "strategy_developer", bob = "senior_trader", admin = "system_administrator", carol = "compliance_officer", svc-prefect = "system_administrator" }}
user = "svc-prefect"
# whoever built the sandbox administers it; as administrator, `--user alice` acts as alice (both names recorded)
logins = {{ {login} = "admin" }}

[maintenance]
# the small sandbox's planted unused index is a few kB: list unused indexes of any size here
thresholds = {{ unused_index_min_bytes = 0 }}
"""


def free_port() -> int:
    """A TCP port free on loopback now: the sandbox API listens there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_sandbox(directory: Path, database_url: str | None, scale: str, seed: int
                  ) -> tuple[SandboxPlatform, Path]:
    try:
        platform = create_sandbox(directory, database_url=database_url, scale=scale, seed=seed)
    except SandboxError as exc:
        raise ConfigError(str(exc)) from None
    config_path = platform.directory / "tradeops.toml"
    atomic_write_text(config_path, SANDBOX_TOML.format(
        config=config_path, scale=scale, seed=seed, offsite=platform.directory / "offsite",
        database_url=platform.database_url, login=json.dumps(os_login()), api_port=free_port(),
        python=sys.executable, directory=platform.directory,
    ))
    return platform, config_path
