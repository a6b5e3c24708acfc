"""infra/prometheus and infra/grafana: the rules and the scrape config pass `promtool check`, the rule
unit tests (`promtool test rules`) pass and cover every alert, the thresholds equal the ones the
flows use, and every expression (rules and dashboard) names only metrics that exist.

promtool comes from Debian's `prometheus` package (`make test` fetches it: infra/prometheus/fetch-tools.sh);
without it these tests fail, they do not skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from blocks.alerts import SEVERITIES
from tasks.certificates.milestones import CERT_ALERT_MILESTONES
from tasks.health.thresholds import HEALTH_THRESHOLDS
from tasks.maintenance.operations import MAINTENANCE_LIMITS
from tasks.metrics import exposed_names

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = REPO / "infra" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARD = REPO / "infra" / "grafana" / "tradeops.json"
# metrics other exporters provide: Prometheus itself, the Pushgateway, node_exporter (runbook 004's thresholds)
FOREIGN_METRICS = {"up", "push_time_seconds"}
FOREIGN_PREFIXES = ("node_",)
REQUIRED_ALERTS = {  # the issue's four, and runbook 000's alerts that map to tradeops metrics
    "BackupStale", "DrDrillFailed", "CertificateExpiring", "CertificateExpired", "FlowRunFailed",
    "GitOperationSlow", "ExperimentCreationSlow", "ExperimentStatisticalFailure", "TradeopsMetricsDown",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
    found = shutil.which("promtool", path=path)
    if not found:
        pytest.fail("promtool is missing: run `make test` (it fetches promtool from Debian's `prometheus` package "
                    "into .venv/bin) or `apt-get install prometheus`")
    return found


def run(promtool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=300)


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def alerts(name: str) -> list[dict]:
    return [rule for rule in rules() if rule.get("alert") == name]


# -- promtool ------------------------------------------------------------------------------------

def test_rule_files_pass_promtool_check_rules(promtool):
    assert RULE_FILES
    done = run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_scrape_config_passes_promtool_check_config(promtool):
    done = run(promtool, "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["tradeops"]["metrics_path"] == "/metrics"
    assert jobs["tradeops"]["static_configs"][0]["targets"] == ["localhost:8000"]  # `tradeops metrics serve` default
    assert jobs["pushgateway"]["honor_labels"] is True
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert sorted(PROMETHEUS / f for f in config["rule_files"]) == RULE_FILES


@pytest.mark.parametrize("unit_tests", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(promtool, unit_tests):
    done = run(promtool, "test", "rules", str(unit_tests))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_where_it_fires():
    fired = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            fired |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert {rule["alert"] for rule in rules() if "alert" in rule} == fired
    assert REQUIRED_ALERTS <= fired


# -- content ----------------------------------------------------------------------------------------

def test_every_alert_has_a_tradeops_severity_and_says_what_is_wrong():
    for rule in (r for r in rules() if "alert" in r):
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def _limits(name: str) -> dict[str, float]:
    """severity -> the number the alert's expression compares with (the last number in it)."""
    found = {}
    for rule in alerts(name):
        numbers = re.findall(r"[<>]=?\s*([\d.]+(?:\s*\*\s*\d+)?)", rule["expr"])
        found[rule["labels"]["severity"]] = eval(numbers[0])  # noqa: S307 - "26 * 3600" from our own rule file
    return found


def test_thresholds_are_the_ones_the_flows_use():
    backup = HEALTH_THRESHOLDS["backup_age_hours"]
    assert _limits("BackupStale") == {"high": backup.warn * 3600, "critical": backup.fail * 3600}
    by_severity = {m.severity: m.days for m in CERT_ALERT_MILESTONES if m.label != "expired"}
    assert _limits("CertificateExpiring") == by_severity  # 30 medium, 7 high, 1 critical
    assert _limits("CertificateExpired") == {"critical": 0}
    assert _limits("MaintenanceOverBudget") == {"medium": MAINTENANCE_LIMITS["time_budget_seconds"]}
    # runbook 000: "Alert if > 3s" (Git), its alert rule's > 10 s (creation), "> 6s", "> 7s"
    assert {name: _limits(name)["medium"] for name in
            ("GitOperationSlow", "ExperimentCreationSlow", "StatisticalAnalysisSlow", "CapitalAllocationSlow")} \
        == {"GitOperationSlow": 3, "ExperimentCreationSlow": 10, "StatisticalAnalysisSlow": 6, "CapitalAllocationSlow": 7}
    # runbook 004's table: warning and critical
    assert _limits("HighCpuUsage") == {"medium": 70, "critical": 85}
    assert _limits("HighMemoryUsage") == {"medium": 70, "critical": 90}
    assert _limits("DiskSpaceLow") == {"medium": 20, "critical": 10}
    assert _limits("ServiceUptimeLow") == {"medium": 0.999, "critical": 0.99}


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords, label
    names (inside {...} or by/without/on (...)), strings, durations or template variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end():].lstrip()
        if following.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", match.group()):
            continue
        names.add(match.group())
    return names


def test_rules_select_only_metrics_that_exist():
    ours = exposed_names()
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, rule
        unknown = {n for n in names if n not in ours and n not in FOREIGN_METRICS and not n.startswith(FOREIGN_PREFIXES)}
        assert not unknown, (rule.get("alert"), unknown)


# -- Grafana ----------------------------------------------------------------------------------------

def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_is_json_and_every_expression_names_metrics_we_export():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "tradeops"
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "environment"}
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    ours = exposed_names()
    for title, expr in exprs:
        names = metric_names(expr)
        assert names and names <= ours, (title, expr, names - ours)
        assert 'environment=~"$environment"' in expr, title
    shown = set().union(*(metric_names(e) for _, e in exprs))
    histograms = {n.removesuffix("_bucket") for n in ours if n.endswith("_bucket")}
    missing = {n for n in ours if not n.endswith(("_bucket", "_count", "_sum"))} | histograms
    missing -= shown | {n.removesuffix("_bucket") for n in shown if n.endswith("_bucket")}
    assert missing == set(), f"metrics without a panel: {sorted(missing)}"


def test_dashboard_expressions_are_valid_promql(promtool, tmp_path):
    """promtool parses each expression as a recording rule (Grafana's variables filled in)."""
    records = [{"record": f"dashboard:panel_{i}", "expr": expr.replace("$__rate_interval", "5m")
                .replace("$environment", ".*")} for i, (_, expr) in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    done = run(promtool, "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
