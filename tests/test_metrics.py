"""Issue 8's metrics: values read from rows put in a real ops store (SQLite and PostgreSQL), served
by `tradeops metrics serve` in a real process and scraped over HTTP, pushed to a real Pushgateway
(Debian's `prometheus-pushgateway`) and to a loopback receiver that records what it got, and
pushed by every flow's `publish_summary` without a down gateway ever failing the flow.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prefect import flow
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from tasks.metrics import METRICS, TradeopsCollector, exposed_names, push_environment_metrics, pushgateway_url
from tasks.metrics.names import STATISTICAL_ANALYSIS_BUCKETS
from tasks.metrics.push import PUSHGATEWAY_ENV
from tradeops.store import (
    AlertSent, BackupArtifact, BackupSet, DrDrill, Experiment, FlowRunSummary, HealthResult, session_for,
)
from tradeops.store.records import append_audit

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
ENV, OTHER = "prod", "staging"
TRADEOPS = str(Path(sys.executable).parent / "tradeops")
TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_database")


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def summary(flow_name: str, state: str, recorded: datetime, result: dict | None = None,
            environment: str = ENV) -> FlowRunSummary:
    return FlowRunSummary(flow_name=flow_name, environment=environment, state=state, recorded_at=recorded,
                          result_json=json.dumps(result or {}))


def artifact(set_id: str, target: str, size: int, made: datetime, verified: datetime | None = None) -> BackupArtifact:
    return BackupArtifact(set_id=set_id, target=target, kind="pg_dump", path=f"{set_id}/{target}", sha256="0" * 64,
                          size=size, created_at=made, verified_at=verified)


def experiment(name: str, status: str, environment: str = ENV) -> Experiment:
    return Experiment(environment=environment, name=name, strategy="mean_reversion", status=status, split="90/10",
                      capital_pct=2.0, duration_days=14, created_by="alice")


def populate(url: str) -> None:
    """Rows of every kind the collector reads, with another environment's rows beside them."""
    with session_for(url) as session:
        session.add_all([
            BackupSet(set_id="d1", environment=ENV, kind="daily", status="complete", created_at=ago(hours=30)),
            BackupSet(set_id="d2", environment=ENV, kind="daily", status="complete", created_at=ago(hours=6)),
            BackupSet(set_id="d3", environment=ENV, kind="daily", status="failed", created_at=ago(hours=2)),
            BackupSet(set_id="s1", environment=OTHER, kind="daily", status="complete", created_at=ago(hours=1)),
        ])
        session.commit()
        session.add_all([
            artifact("d1", "db:platform", 1000, ago(hours=30), verified=ago(hours=26)),
            artifact("d1", "git:strategies", 200, ago(hours=30)),
            artifact("d2", "db:platform", 1500, ago(hours=6)),
            artifact("d3", "db:platform", 9999, ago(hours=2)),
            artifact("s1", "db:platform", 5, ago(hours=1), verified=ago(minutes=30)),
            DrDrill(environment=ENV, set_id="d0", started_at=ago(days=100), passed=True, rto_seconds=120, rpo_seconds=3600),
            DrDrill(environment=ENV, set_id="d1", started_at=ago(days=10), passed=False, rto_seconds=300.5,
                    rpo_seconds=7200),
            DrDrill(environment=OTHER, started_at=ago(days=1), passed=True, rto_seconds=1),
            experiment("e1", "running"), experiment("e2", "running"), experiment("e3", "draft"),
            experiment("e4", "running", OTHER),
            summary("daily-backup", "Completed", ago(hours=26)),
            summary("daily-backup", "Failed", ago(hours=2)),
            summary("health-check", "Failed", ago(hours=3)),
            summary("health-check", "Completed", ago(hours=1)),
            summary("daily-backup", "Completed", ago(hours=1), environment=OTHER),
            summary("restore", "Crashed", ago(hours=7)),
            summary("cert-check", "Completed", ago(hours=5), {"certificates": [
                {"name": "api.pem", "not_after": (NOW + timedelta(days=40)).isoformat()},
                {"name": "old.pem", "not_after": (NOW - timedelta(days=10)).isoformat()},
                {"name": "broken.pem", "not_after": None, "error": "cannot read"}]}),
            summary("db-maintenance", "Completed", ago(hours=4), {"databases": [
                {"target": "db:platform", "steps": [
                    {"statement": "VACUUM (ANALYZE) public.orders", "seconds": 10.5},
                    {"statement": "VACUUM (ANALYZE) public.fills", "seconds": 4.5},
                    {"statement": "REINDEX INDEX CONCURRENTLY public.ix_orders_ts", "seconds": 30.0}]},
                {"target": "db:risk", "steps": [], "failure": "pre-flight failed"}]}),
            summary("experiment-evaluation", "Failed", ago(days=2), {"experiments": [
                {"experiment": "e1", "analysis_seconds": 1.5, "failure": None},
                {"experiment": "e2", "failure": "not evaluated: no trades"}]}),
            summary("experiment-evaluation", "Completed", ago(days=1), {"experiments": [
                {"experiment": "e1", "analysis_seconds": 7.0, "failure": None}]}),
            # the older health-check run said 3 days; the newest says 20 (renewed outside tradeops)
            HealthResult(flow_run_id="h1", environment=ENV, target="cert:api.pem", check="certificate_expiry",
                         status="fail", value=3.0, checked_at=ago(hours=3)),
            HealthResult(flow_run_id="h2", environment=ENV, target="cert:api.pem", check="certificate_expiry",
                         status="warn", value=20.0, checked_at=ago(hours=1)),
            HealthResult(flow_run_id="h2", environment=ENV, target="system", check="disk_free_pct", status="warn",
                         value=15.0, unit="%", checked_at=ago(hours=1)),
            HealthResult(flow_run_id="h2", environment=ENV, target="backups", check="backup_age", status="skip",
                         checked_at=ago(hours=1)),
            AlertSent(environment=ENV, alert_key="a", severity="high"),
            AlertSent(environment=ENV, alert_key="b", severity="high"),
            AlertSent(environment=ENV, alert_key="c", severity="critical"),
            AlertSent(environment=OTHER, alert_key="d", severity="low"),
        ])
        session.commit()
    for operation, ms, success in [("strategy_promote", 4000, True), ("strategy_promote", 4000, True),
                                   ("strategy_promote", 100, False), ("strategy_version", 500, True),
                                   ("strategy_diff", None, True), ("experiment_create", 1500, True),
                                   ("experiment_create", 20, False), ("experiment_start", 6000, True),
                                   ("config_apply", 9000, True)]:
        append_audit(url, operation, "alice", success=success, execution_time_ms=ms)


def samples(text: str) -> dict[tuple, float]:
    """A scrape as {(sample name, (label, value)...): value}, parsed by prometheus_client's parser."""
    found = {}
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


def sample(scraped: dict, name: str, **labels) -> float | None:
    return scraped.get((name, *sorted(labels.items())))


def collect(url: str, environment: str = ENV, collector: TradeopsCollector | None = None) -> dict[tuple, float]:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(collector or TradeopsCollector(environment, url, clock=lambda: NOW))
    return samples(generate_latest(registry).decode())


# -- values from the store -------------------------------------------------------------------------

def test_backups_drills_certificates_maintenance_from_the_store(store_url):
    populate(store_url)
    got = collect(store_url)
    target = {"environment": ENV, "target": "db:platform"}
    assert sample(got, "tradeops_backup_last_success_timestamp_seconds", **target) == ago(hours=6).timestamp()
    assert sample(got, "tradeops_backup_age_seconds", **target) == 6 * 3600
    assert sample(got, "tradeops_backup_size_bytes", **target) == 1500  # the newest complete set's, not the failed one
    assert sample(got, "tradeops_backup_last_verified_timestamp_seconds", **target) == ago(hours=26).timestamp()
    git = {"environment": ENV, "target": "git:strategies"}
    assert sample(got, "tradeops_backup_age_seconds", **git) == 30 * 3600
    assert sample(got, "tradeops_backup_size_bytes", **git) == 200
    assert sample(got, "tradeops_backup_last_verified_timestamp_seconds", **git) is None  # never verified
    assert sample(got, "tradeops_backup_sets", environment=ENV, kind="daily", status="complete") == 2
    assert sample(got, "tradeops_backup_sets", environment=ENV, kind="daily", status="failed") == 1

    assert sample(got, "tradeops_dr_drill_success", environment=ENV) == 0  # the last one failed
    assert sample(got, "tradeops_dr_drill_rto_seconds", environment=ENV) == 300.5
    assert sample(got, "tradeops_dr_drill_rpo_seconds", environment=ENV) == 7200
    assert sample(got, "tradeops_dr_drill_last_timestamp_seconds", environment=ENV) == ago(days=10).timestamp()

    # api.pem: the newest observation is the health check's (1 h ago, 20 days left), not cert-check's
    api = (NOW - timedelta(hours=1) + timedelta(days=20))
    assert sample(got, "tradeops_certificate_expiry_timestamp_seconds", environment=ENV, certificate="api.pem") \
        == api.timestamp()
    assert sample(got, "tradeops_certificate_days_left", environment=ENV, certificate="api.pem") \
        == pytest.approx(20 - 1 / 24, abs=1e-3)
    assert sample(got, "tradeops_certificate_days_left", environment=ENV, certificate="old.pem") == -10
    assert not [k for k in got if ("certificate", "broken.pem") in k]  # unreadable: no expiry to export

    assert sample(got, "tradeops_maintenance_duration_seconds", **target) == 45.0
    assert sample(got, "tradeops_maintenance_step_duration_seconds", **target, operation="VACUUM") == 15.0
    assert sample(got, "tradeops_maintenance_step_duration_seconds", **target, operation="REINDEX") == 30.0
    assert sample(got, "tradeops_maintenance_duration_seconds", environment=ENV, target="db:risk") == 0
    assert sample(got, "tradeops_maintenance_last_timestamp_seconds", environment=ENV) == ago(hours=4).timestamp()


def test_flow_runs_health_and_alerts_from_the_store(store_url):
    populate(store_url)
    got = collect(store_url)
    backup, health = {"environment": ENV, "flow": "daily-backup"}, {"environment": ENV, "flow": "health-check"}
    assert sample(got, "tradeops_flow_run_last_state", **backup, state="Failed") == 1
    assert sample(got, "tradeops_flow_run_last_state", **backup, state="Completed") == 0
    assert sample(got, "tradeops_flow_run_last_state", **health, state="Failed") == 0
    assert sample(got, "tradeops_flow_run_last_timestamp_seconds", **backup) == ago(hours=2).timestamp()
    assert sample(got, "tradeops_flow_run_last_failure_timestamp_seconds", **health) == ago(hours=3).timestamp()
    assert sample(got, "tradeops_flow_run_last_failure_timestamp_seconds", environment=ENV, flow="cert-check") is None
    restore = {"environment": ENV, "flow": "restore"}  # a run recorded Crashed is a failure too
    assert [sample(got, "tradeops_flow_run_last_state", **restore, state=s) for s in ("Completed", "Failed", "Crashed")] \
        == [0, 0, 1]
    assert sample(got, "tradeops_flow_run_last_failure_timestamp_seconds", **restore) == ago(hours=7).timestamp()
    assert sample(got, "tradeops_flow_runs_total", **backup, state="Completed") == 1
    assert sample(got, "tradeops_flow_runs_total", **backup, state="Failed") == 1

    assert sample(got, "tradeops_health_check_value", environment=ENV, target="system", check="disk_free_pct") == 15.0
    assert sample(got, "tradeops_health_check_status", environment=ENV, target="system", check="disk_free_pct") == 1
    assert sample(got, "tradeops_health_check_status", environment=ENV, target="backups", check="backup_age") is None

    assert sample(got, "tradeops_alerts_sent_total", environment=ENV, severity="high") == 2
    assert sample(got, "tradeops_alerts_sent_total", environment=ENV, severity="critical") == 1
    assert all(v == 1 for k, v in got.items() if k[0] == "tradeops_metrics_collect_success")


def test_runbook_000_metrics_from_the_audit_trail_and_evaluations(store_url):
    populate(store_url)
    got = collect(store_url)
    promote = {"environment": ENV, "operation_type": "promote"}
    assert sample(got, "git_operations_total", **promote, status="success") == 2
    assert sample(got, "git_operations_total", **promote, status="failure") == 1
    assert sample(got, "git_operations_total", environment=ENV, operation_type="diff", status="success") == 1
    assert sample(got, "git_operation_duration_seconds_count", **promote) == 3
    assert sample(got, "git_operation_duration_seconds_sum", **promote) == pytest.approx(8.1)
    assert sample(got, "git_operation_duration_seconds_bucket", **promote, le="0.1") == 1
    assert sample(got, "git_operation_duration_seconds_bucket", **promote, le="3.0") == 1
    assert sample(got, "git_operation_duration_seconds_bucket", **promote, le="5.0") == 3
    assert sample(got, "git_operation_duration_seconds_bucket", **promote, le="+Inf") == 3
    # a diff without execution_time_ms is counted as an operation, not as a duration
    assert sample(got, "git_operation_duration_seconds_count", environment=ENV, operation_type="diff") == 0
    assert not [k for k in got if ("operation_type", "apply") in k or ("operation_type", "config_apply") in k]

    # creation and capital allocation: successful experiment_create / experiment_start entries only
    assert sample(got, "experiment_creation_duration_seconds_count", environment=ENV) == 1
    assert sample(got, "experiment_creation_duration_seconds_bucket", environment=ENV, le="1.0") == 0
    assert sample(got, "experiment_creation_duration_seconds_bucket", environment=ENV, le="2.0") == 1
    assert sample(got, "capital_allocation_duration_seconds_sum", environment=ENV) == 6.0
    assert sample(got, "capital_allocation_duration_seconds_bucket", environment=ENV, le="5.0") == 0
    assert sample(got, "capital_allocation_duration_seconds_bucket", environment=ENV, le="7.0") == 1

    assert sample(got, "experiments_active_total", environment=ENV) == 2
    assert sample(got, "statistical_analysis_duration_seconds_count", environment=ENV) == 2
    assert sample(got, "statistical_analysis_duration_seconds_sum", environment=ENV) == 8.5
    assert sample(got, "statistical_analysis_duration_seconds_bucket", environment=ENV, le="2.0") == 1
    assert sample(got, "statistical_analysis_duration_seconds_bucket", environment=ENV, le="6.0") == 1
    assert sample(got, "statistical_analysis_duration_seconds_bucket", environment=ENV, le="10.0") == 2
    assert sample(got, "experiment_statistical_errors_total", environment=ENV) == 1


def test_running_totals_read_only_new_rows_and_never_count_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    collector = TradeopsCollector(ENV, url, clock=lambda: NOW)
    for _ in range(3):  # repeated scrapes, nothing new: the same numbers
        got = collect(url, collector=collector)
        assert sample(got, "git_operations_total", environment=ENV, operation_type="promote", status="success") == 2
        assert sample(got, "statistical_analysis_duration_seconds_count", environment=ENV) == 2
    append_audit(url, "strategy_promote", "bob", execution_time_ms=2500)
    with session_for(url) as session:
        session.add(summary("experiment-evaluation", "Completed", NOW, {"experiments": [
            {"analysis_seconds": 0.4}, {"failure": "not evaluated: data gate"}]}))
        session.commit()
    got = collect(url, collector=collector)
    promote = {"environment": ENV, "operation_type": "promote"}
    assert sample(got, "git_operations_total", **promote, status="success") == 3
    assert sample(got, "git_operation_duration_seconds_bucket", **promote, le="3.0") == 2
    assert sample(got, "git_operation_duration_seconds_sum", **promote) == pytest.approx(10.6)
    assert sample(got, "statistical_analysis_duration_seconds_count", environment=ENV) == 3
    assert sample(got, "experiment_statistical_errors_total", environment=ENV) == 2
    assert collect(url) == got  # a fresh collector (a new process) agrees with the running totals


def test_other_environments_rows_stay_out(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    got = collect(url, OTHER)
    assert sample(got, "experiments_active_total", environment=OTHER) == 1
    assert sample(got, "tradeops_backup_size_bytes", environment=OTHER, target="db:platform") == 5
    assert sample(got, "tradeops_dr_drill_success", environment=OTHER) == 1
    assert sample(got, "tradeops_alerts_sent_total", environment=OTHER, severity="low") == 1
    assert sample(got, "tradeops_flow_run_last_state", environment=OTHER, flow="health-check", state="Completed") is None
    assert {dict(k[1:]).get("environment") for k in got} == {OTHER}


def test_an_empty_store_exports_the_runbook_series_at_zero(tmp_path):
    got = collect(f"sqlite:///{tmp_path / 'ops.db'}")
    assert sample(got, "experiments_active_total", environment=ENV) == 0
    assert sample(got, "experiment_creation_duration_seconds_count", environment=ENV) == 0
    assert sample(got, "experiment_statistical_errors_total", environment=ENV) == 0
    assert sample(got, "tradeops_dr_drill_success", environment=ENV) is None  # no drill yet: nothing to alert on


def test_an_unreachable_store_is_reported_per_part_not_raised(caplog):
    caplog.set_level(logging.WARNING, logger="tradeops.metrics")
    got = collect(f"postgresql://nobody@127.0.0.1:{free_port()}/ops")
    parts = {dict(k[1:])["part"]: v for k, v in got.items() if k[0] == "tradeops_metrics_collect_success"}
    assert parts and set(parts.values()) == {0.0}
    assert {"audit", "backups", "drills", "certificates", "flow_runs"} <= set(parts)
    assert "backups of environment 'prod' could not be read" in caplog.text


def test_every_exported_family_is_in_the_table_with_its_type_and_labels(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    registry_text = generate_latest(_registry(url)).decode()
    families = {m.name: m for m in text_string_to_metric_families(registry_text)}
    assert {f"{s.name.removesuffix('_total')}" if s.kind == "counter" else s.name for s in METRICS.values()} \
        == set(families)
    for metric in families.values():
        spec = METRICS.get(metric.name) or METRICS[f"{metric.name}_total"]
        assert metric.type == spec.kind, metric.name
        for s in metric.samples:
            assert s.name in exposed_names()
            assert set(s.labels) - {"le"} == set(spec.labels), s.name


def _registry(url: str):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(TradeopsCollector(ENV, url, clock=lambda: NOW))
    return registry


def test_the_evaluation_textfile_uses_the_same_names_and_buckets(tmp_path):
    from tasks.experiments.metrics import ExperimentMetrics

    metrics = ExperimentMetrics()
    metrics.active.labels(ENV).set(2)
    metrics.analysis_seconds.labels(ENV).observe(7.0)
    metrics.errors.labels(ENV, "data").inc()
    got = samples(metrics.write(tmp_path).read_text())
    assert sample(got, "experiments_active_total", environment=ENV) == 2
    assert sample(got, "experiment_statistical_errors_total", environment=ENV, reason="data") == 1
    bounds = sorted(float(dict(k[1:])["le"]) for k in got if k[0] == "statistical_analysis_duration_seconds_bucket")
    assert bounds == [*STATISTICAL_ANALYSIS_BUCKETS, float("inf")]


# -- tradeops metrics serve / show -----------------------------------------------------------------

def environment_file(tmp_path: Path, store: str, name: str) -> Path:
    config = tmp_path / "tradeops.toml"
    config.write_text(textwrap.dedent(f"""\
        [environment]
        name = "{name}"
        data_dir = "{tmp_path / 'data'}"

        [ops_store]
        url = "{store}"
        """))
    return config


def scrape(url: str) -> dict[tuple, float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return samples(response.read().decode())


def test_metrics_serve_answers_scrapes_over_http_with_live_store_values(tmp_path, prefect_harness):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    config = environment_file(tmp_path, url, "metrics-serve")
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    proc = subprocess.Popen([TRADEOPS, "metrics", "serve", "--config", str(config), "--port", "0",
                             "--address", "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()  # "tradeops metrics: environment '...' on http://127.0.0.1:PORT/metrics"
        assert "/metrics" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        endpoint = line.split(" on ", 1)[1].strip()
        first = scrape(endpoint)
        labels = {"environment": "metrics-serve"}
        assert sample(first, "experiments_active_total", **labels) == 0  # populate() wrote "prod" rows
        with session_for(url) as session:
            session.add(experiment("live", "running", "metrics-serve"))
            session.add(summary("dr-drill", "Failed", NOW, environment="metrics-serve"))
            session.commit()
        append_audit(url, "strategy_rollback", "bob", execution_time_ms=1200)
        second = scrape(endpoint)
        assert sample(second, "experiments_active_total", **labels) == 1
        assert sample(second, "tradeops_flow_run_last_state", **labels, flow="dr-drill", state="Failed") == 1
        assert sample(second, "git_operations_total", **labels, operation_type="rollback", status="success") == 1
        assert sample(second, "git_operations_total", **labels, operation_type="promote", status="success") == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, proc.stderr.read()


def test_metrics_show_prints_one_scrape_and_a_taken_port_is_a_usage_error(tmp_path, prefect_harness, capsys):
    from tradeops.cli.main import main

    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    config = environment_file(tmp_path, url, "metrics-show")
    assert main(["metrics", "show", "--config", str(config)]) == 0
    got = samples(capsys.readouterr().out)
    assert sample(got, "tradeops_metrics_collect_success", environment="metrics-show", part="audit") == 1
    assert sample(got, "git_operations_total", environment="metrics-show", operation_type="promote",
                  status="failure") == 1
    with socket_listening() as port:
        assert main(["metrics", "serve", "--config", str(config), "--port", str(port), "--address", "127.0.0.1"]) == 2
    assert f"--port {port}: cannot listen" in capsys.readouterr().err


class socket_listening:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


# -- pushing ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pushgateway():
    """Debian's prometheus-pushgateway on a loopback port, without persistence."""
    binary = shutil.which("prometheus-pushgateway", path=TOOL_PATH) or shutil.which("pushgateway", path=TOOL_PATH)
    if not binary:
        pytest.fail("the Pushgateway is missing: `make test` fetches it (infra/prometheus/fetch-tools.sh), or "
                    "apt-get install prometheus-pushgateway")
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the Pushgateway did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_push_lands_in_a_real_pushgateway_and_replaces_the_group(tmp_path, pushgateway):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    outcome = push_environment_metrics(ENV, url, pushgateway)
    assert outcome.pushed, outcome.error
    got = scrape(f"{pushgateway}/metrics")
    group = {"job": "tradeops", "environment": ENV}
    assert sample(got, "git_operations_total", **group, operation_type="promote", status="success", instance="") == 2
    assert sample(got, "tradeops_dr_drill_success", **group, instance="") == 0
    assert sample(got, "tradeops_backup_size_bytes", **group, target="db:platform", instance="") == 1500

    with session_for(url) as session:  # the drill is run again and passes; push replaces the whole group
        session.add(DrDrill(environment=ENV, started_at=NOW, passed=True, rto_seconds=60))
        session.commit()
    assert push_environment_metrics(ENV, url, pushgateway).pushed
    got = scrape(f"{pushgateway}/metrics")
    assert sample(got, "tradeops_dr_drill_success", **group, instance="") == 1
    assert sample(got, "tradeops_dr_drill_rpo_seconds", **group, instance="") is None  # gone with the old drill


class Receiver(http.server.ThreadingHTTPServer):
    """A Pushgateway-compatible endpoint on loopback that records each request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"method": "PUT", "path": self.path, "body": body.decode(),
                                          "authorization": self.headers.get("Authorization")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def test_push_sends_basic_auth_from_the_url_and_never_shows_the_password(tmp_path, receiver):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    populate(url)
    port = receiver.server_address[1]
    outcome = push_environment_metrics(ENV, url, f"http://ops:s3cret@127.0.0.1:{port}")
    assert outcome.pushed and outcome.gateway == f"http://127.0.0.1:{port}"
    (request,) = receiver.requests
    assert request["path"] == f"/metrics/job/tradeops/environment/{ENV}"
    assert request["authorization"] == "Basic " + base64.b64encode(b"ops:s3cret").decode()
    assert sample(samples(request["body"]), "experiments_active_total", environment=ENV) == 2

    refused = push_environment_metrics(ENV, url, f"http://ops:s3cret@127.0.0.1:{free_port()}")
    assert not refused.pushed and "s3cret" not in refused.error + refused.gateway


@pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)
def test_pushgateway_url_comes_from_the_environment_variable(monkeypatch):
    monkeypatch.setenv(PUSHGATEWAY_ENV, "http://gw:9091")
    assert pushgateway_url("anything") == "http://gw:9091"
    monkeypatch.delenv(PUSHGATEWAY_ENV)
    assert pushgateway_url("never-applied") is None


@flow(name="metrics-push-test")
def finishing_flow(environment: str, store_url: str) -> dict:
    from tasks.reporting import publish_summary

    return publish_summary("metrics-push-test", environment, store_url, "# done", {"ok": True})


@pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)
def test_every_flow_pushes_at_its_end_and_a_down_gateway_only_warns(tmp_path, pushgateway, monkeypatch, caplog):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    monkeypatch.setenv(PUSHGATEWAY_ENV, pushgateway)
    state = finishing_flow("pushed-env", url, return_state=True)
    assert state.is_completed()
    got = scrape(f"{pushgateway}/metrics")
    assert sample(got, "tradeops_flow_run_last_state", job="tradeops", environment="pushed-env", instance="",
                  flow="metrics-push-test", state="Completed") == 1

    caplog.set_level(logging.WARNING)
    monkeypatch.setenv(PUSHGATEWAY_ENV, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    state = finishing_flow("pushed-env", url, return_state=True)
    assert state.is_completed() and state.result() == {"ok": True}
    assert "metrics not pushed to the Pushgateway at http://127.0.0.1:" in caplog.text
