"""infra/alertmanager: the configuration passes `amtool check-config`, routes each severity to its
receiver (runbook 001 "Alert Channels": critical pages, high and medium go to chat, low to the
digest), groups on the labels tradeops sends, repeats every 4 h like tasks/alert_groups.py and
sends resolved notices. amtool comes from Debian's `prometheus-alertmanager` package (`make test`
fetches it: infra/prometheus/fetch-tools.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from blocks.alerts import SEVERITIES
from tasks.alert_groups import DEFAULT_REPEAT
from tasks.alerts import Alert, alertmanager_body

CONFIG = Path(__file__).resolve().parent.parent / "infra" / "alertmanager" / "alertmanager.yml"
RECEIVERS = {"critical": "pager", "high": "chat-ops-critical", "medium": "chat-ops-alerts", "low": "email-digest"}


@pytest.fixture(scope="module")
def amtool() -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
    found = shutil.which("amtool", path=path)
    if not found:
        pytest.fail("amtool is missing: run `make test` (it fetches amtool from Debian's `prometheus-alertmanager` "
                    "package into .venv/bin) or `apt-get install prometheus-alertmanager`")
    return found


def test_the_configuration_passes_amtool_check_config(amtool):
    checked = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "4 receivers" in checked.stdout


@pytest.mark.parametrize("severity", SEVERITIES)
def test_each_severity_reaches_its_receiver(amtool, severity):
    labels = alertmanager_body(Alert("k", severity, "s", target="platform", name="database_unreachable"), "prod",
                               datetime(2026, 12, 1, tzinfo=timezone.utc))[0]["labels"]
    routed = subprocess.run([amtool, "config", "routes", "test", f"--config.file={CONFIG}",
                             *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, timeout=60)
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.strip() == RECEIVERS[severity]


def test_grouping_repeat_and_resolved_notices_match_tradeops():
    config = yaml.safe_load(CONFIG.read_text())
    route = config["route"]
    sent = set(alertmanager_body(Alert("k", "high", "s"), "prod", datetime.now(timezone.utc))[0]["labels"])
    assert set(route["group_by"]) <= sent and {"environment", "alertname", "target"} == set(route["group_by"])
    assert route["repeat_interval"] == f"{int(DEFAULT_REPEAT.total_seconds() // 3600)}h"
    chat_and_pager = [c for r in config["receivers"] if r["name"] != "email-digest"
                      for c in (r.get("slack_configs", []) + r.get("pagerduty_configs", []))]
    assert chat_and_pager and all(c["send_resolved"] for c in chat_and_pager)
    assert "api_url:" not in CONFIG.read_text() and "routing_key:" not in CONFIG.read_text()  # secrets from files


def test_a_resolved_notice_ends_the_alert_in_alertmanager():
    now = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    firing = alertmanager_body(Alert("k", "critical", "db down", target="platform", name="database_unreachable"),
                               "prod", now)[0]
    resolved = alertmanager_body(Alert("k2", "critical", "resolved: db down", target="platform",
                                       name="database_unreachable", resolved=True), "prod", now)[0]
    assert "endsAt" not in firing and resolved["endsAt"] == now.isoformat()
    assert resolved["labels"] == firing["labels"]  # the same alert, by its labels
