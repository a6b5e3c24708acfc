"""cert-check end to end: real certificates from a test CA, a real TLS server and a real HTTP
alert receiver on loopback, renew commands that are real programs. No mocks."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import ssl
import stat
import sys
import threading
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from sqlmodel import select

from blocks.alerts import AlertChannel
from blocks.certificates import CertificateSet
from flows.cert_check import cert_check
from tasks.alerts import Alert, send_once
from tasks.certificates import milestone_for
from tasks.certificates.chain import trusted_roots
from tasks.certificates.hostnames import name_matches
from tasks.certificates.inspection import inspect_endpoint, inspect_file
from tasks.certificates.milestones import milestone_alert_key
from tradeops.cli.common import apply_file
from tradeops.sandbox.certificates import private_key_pem, create_ca, issue_certificate
from tradeops.store import AlertSent, AuditEntry, FlowRunSummary, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

NOW = datetime.now(timezone.utc)
TOKEN = "T0ken-" + uuid.uuid4().hex  # in the webhook URL: must never surface


# -- real components ------------------------------------------------------------------------------

class TestCA:
    """A CA on disk that issues server certificates (the sandbox's own issuing code)."""

    __test__ = False

    def __init__(self, folder: Path, name: str = "ca"):
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = create_ca(self.key, NOW - timedelta(days=500))
        self.cert_path, self.key_path = folder / f"{name}.pem", folder / f"{name}.key"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.key_path.write_bytes(private_key_pem(self.key))

    def issue(self, path: Path, names: tuple[str, ...], days: float) -> Path:
        """`path` (PEM) and its `.key` (0600) for `names`, expiring in `days`."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_certificate(self.cert, self.key, key, names, (NOW + timedelta(days=days)).replace(microsecond=0),
                                 lifetime_days=int(max(days, 0)) + 90)  # issued 90 days ago
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = path.with_suffix(".key")
        key_path.write_bytes(private_key_pem(key))
        key_path.chmod(0o600)
        return path


def self_signed(path: Path, name: str, days: float) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def intermediate_ca(ca: TestCA) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA signed by `ca`, with the root's constraints and key usage."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test intermediate")]))
               .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=10)).not_valid_after(NOW + timedelta(days=900))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    for ext in ca.cert.extensions:
        if not isinstance(ext.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(ca.key, hashes.SHA256()), key


class AlertReceiver(http.server.ThreadingHTTPServer):
    """A webhook / Alertmanager endpoint on 127.0.0.1 that records every JSON body."""

    def __init__(self):
        self.bodies: list[tuple[str, object]] = []
        self.status = 200

        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.bodies.append((self.path, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def receiver():
    server = AlertReceiver()
    yield server
    server.shutdown()
    server.server_close()


class TLSServer:
    """A TLS server on 127.0.0.1 presenting `cert` (a handshake, then the connection closes)."""

    def __init__(self, cert: Path, key: Path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):  # the client refused our certificate: its business
                conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


# -- pure rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("days_left, label, severity", [
    (30.01, None, None), (30.0, "30d", "medium"), (7.01, "30d", "medium"), (7.0, "7d", "high"),
    (1.01, "7d", "high"), (1.0, "1d", "critical"), (0.01, "1d", "critical"), (0.0, "expired", "critical"),
    (-10, "expired", "critical"),
])
def test_milestones_at_30_7_1_days_exactly(days_left, label, severity):
    milestone = milestone_for(days_left)
    assert (milestone.label if milestone else None, milestone.severity if milestone else None) == (label, severity)


def test_alert_keys_fresh_per_certificate_and_daily_once_expired():
    thirty, expired = milestone_for(25), milestone_for(-1)
    today = date(2026, 1, 2)
    assert milestone_alert_key("/c/a.pem", "f1", thirty, today) == "cert:/c/a.pem:f1:30d"
    assert milestone_alert_key("/c/a.pem", "f2", thirty, today) != milestone_alert_key("/c/a.pem", "f1", thirty, today)
    assert milestone_alert_key("/c/a.pem", "f1", expired, today) == "cert:/c/a.pem:f1:expired:2026-01-02"
    assert milestone_alert_key("/c/a.pem", "f1", expired, today + timedelta(days=1)).endswith("2026-01-03")


@pytest.mark.parametrize("pattern, host, matches", [
    ("api.example.test", "API.example.test", True), ("*.example.test", "api.example.test", True),
    ("*.example.test", "example.test", False), ("*.example.test", "a.b.example.test", False),
    ("api.*.test", "api.example.test", False), ("a*.example.test", "api.example.test", False),
    ("*.test", "example.test", False), ("localhost", "127.0.0.1", False), ("127.0.0.1", "127.0.0.1", True),
])
def test_host_names_match_by_rfc_6125(pattern, host, matches):
    assert name_matches(pattern, host) is matches


# -- files and endpoints --------------------------------------------------------------------------

def test_files_hostname_chain_intermediates_and_unreadable(tmp_path):
    ca = TestCA(tmp_path / "ca")
    good = ca.issue(tmp_path / "api.pem", ("api.example.test", "*.svc.example.test"), 200)
    mismatch = ca.issue(tmp_path / "other.pem", ("other.example.test",), 200)
    untrusted = self_signed(tmp_path / "self.pem", "api.example.test", 200)
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    # leaf + intermediate in one file, the root in ca_file
    inter, inter_key = intermediate_ca(ca)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_certificate(inter, inter_key, leaf_key, ("chained.example.test",), NOW + timedelta(days=100))
    chained = tmp_path / "chained.pem"
    chained.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + inter.public_bytes(serialization.Encoding.PEM))
    leaf_only = tmp_path / "leaf-only.pem"
    leaf_only.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))

    certs = CertificateSet(target="t", ca_file=str(ca.cert_path), hostnames={
        "api.pem": ["api.example.test", "x.svc.example.test"], "other.pem": ["api.example.test"],
        "self.pem": ["api.example.test"], "chained.pem": ["chained.example.test"]})
    roots = trusted_roots(certs.ca_file)
    found = {p.name: inspect_file(certs, p, roots, NOW)
             for p in (good, mismatch, untrusted, broken, chained, leaf_only)}

    assert found["api.pem"].hostname.passed and found["api.pem"].chain.passed
    assert found["api.pem"].status == "pass" and found["api.pem"].problems() == []
    assert found["other.pem"].hostname.passed is False and "api.example.test" in found["other.pem"].hostname.detail
    assert found["other.pem"].chain.passed and found["other.pem"].status == "fail"
    assert found["self.pem"].hostname.passed and found["self.pem"].chain.passed is False
    assert str(ca.cert_path) in found["self.pem"].chain.detail
    assert found["broken.pem"].error and str(broken) in found["broken.pem"].error
    assert found["broken.pem"].status == "fail"
    assert found["chained.pem"].chain.passed, found["chained.pem"].chain
    assert found["leaf-only.pem"].chain.passed is False  # the intermediate is missing
    assert found["leaf-only.pem"].hostname.passed is None and found["leaf-only.pem"].hostname.detail == "not configured"
    # the system bundle does not know the test CA
    assert inspect_file(CertificateSet(target="t"), good, trusted_roots(None), NOW).chain.passed is False


def test_expired_certificate_chain_is_judged_at_its_last_valid_second(tmp_path):
    ca = TestCA(tmp_path / "ca")
    old = ca.issue(tmp_path / "old.pem", ("old.example.test",), -3)
    check = inspect_file(CertificateSet(target="t", ca_file=str(ca.cert_path)), old, trusted_roots(str(ca.cert_path)), NOW)
    assert check.chain.passed and "at its expiry" in check.chain.detail
    assert check.problems() == ["expired 3.0 days ago"]


def test_endpoint_hostname_by_host_and_chain_by_handshake(tmp_path):
    ca = TestCA(tmp_path / "ca")
    cert = ca.issue(tmp_path / "localhost.pem", ("localhost",), 60)
    server = TLSServer(cert, cert.with_suffix(".key"))
    try:
        certs = CertificateSet(target="t", ca_file=str(ca.cert_path))
        by_ip = inspect_endpoint(certs, f"127.0.0.1:{server.port}", NOW)
        by_name = inspect_endpoint(certs, f"localhost:{server.port}", NOW)
        system = inspect_endpoint(CertificateSet(target="t"), f"localhost:{server.port}", NOW)
    finally:
        server.close()
    assert by_ip.hostname.passed is False and "127.0.0.1" in by_ip.hostname.detail
    assert by_ip.chain.passed and by_ip.names == ("localhost",) and round(by_ip.days_left) == 60
    assert by_name.hostname.passed and by_name.chain.passed and by_name.status == "pass"
    assert system.chain.passed is False and "local issuer" in system.chain.detail
    closed = inspect_endpoint(CertificateSet(target="t"), f"127.0.0.1:{server.port}", NOW, timeout=2)
    assert closed.status == "fail" and closed.error and closed.name == f"127.0.0.1:{server.port}"


# -- alerts ---------------------------------------------------------------------------------------

def test_send_once_per_channel_and_retry_of_a_failed_channel(tmp_path, receiver):
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    hook = AlertChannel(target="hook", kind="webhook", url=receiver.url(f"/hooks/{TOKEN}"), min_severity="medium")
    am = AlertChannel(target="am", kind="alertmanager", url=receiver.url(f"/am/{TOKEN}/"), min_severity="high")
    log = AlertChannel(target="run-log", kind="log", min_severity="low")
    alert = Alert("k1", "high", "disk almost full", "3% left", "disk:/data", "DiskFull")

    receiver.status = 500
    first = send_once(store, "e1", alert, [hook, am, log])
    assert first.status == "partly sent"
    assert [d.describe() for d in first.failures] == ["webhook channel 'hook': HTTP 500",
                                                       "alertmanager channel 'am': HTTP 500"]
    assert TOKEN not in json.dumps(first.as_dict())
    receiver.status = 200
    second = send_once(store, "e1", alert, [hook, am, log])
    assert second.status == "sent" and second.skipped == ("run-log",)  # the log had it already
    assert [d.channel for d in second.deliveries] == ["hook", "am"]
    third = send_once(store, "e1", alert, [hook, am, log])
    assert third.status == "already sent" and not third.deliveries

    paths = [p for p, _ in receiver.bodies]
    assert paths == [f"/hooks/{TOKEN}", f"/am/{TOKEN}/api/v2/alerts"] * 2
    webhook, alertmanager = receiver.bodies[-2][1], receiver.bodies[-1][1]
    assert webhook["text"].startswith("[HIGH] e1: disk almost full") and webhook["key"] == "k1"
    assert alertmanager[0]["labels"] == {"alertname": "DiskFull", "severity": "high", "environment": "e1",
                                         "target": "disk:/data"}
    assert alertmanager[0]["annotations"] == {"summary": "disk almost full", "description": "3% left"}
    # a medium alert is below the Alertmanager channel's min_severity
    assert [d.channel for d in send_once(store, "e1", Alert("k2", "medium", "m"), [hook, am]).deliveries] == ["hook"]
    with session_for(store) as session:
        rows = session.exec(select(AlertSent).where(AlertSent.alert_key == "k1")).all()
    assert sorted(r.channels for r in rows) == ["hook,am", "run-log"]


def test_unreachable_channel_is_named_without_its_url(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the with block ends
    hook = AlertChannel(target="gone", kind="webhook", url=f"http://127.0.0.1:{port}/x/{TOKEN}")
    bad = AlertChannel(target="typo", kind="webhook", url=f"htp:/{TOKEN}")
    outcome = send_once(f"sqlite:///{tmp_path / 'ops.db'}", "e", Alert("k", "critical", "s"), [hook, bad])
    assert outcome.status == "failed"
    lines = [d.describe() for d in outcome.failures]
    assert lines[0].startswith("webhook channel 'gone': ") and lines[1] == "webhook channel 'typo': invalid URL"
    assert TOKEN not in " ".join(lines)


# -- the flow -------------------------------------------------------------------------------------

async def _evidence(flow_run_id: str):
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return logs, artifacts


def _exposed(state, result: dict, store: str) -> str:
    """Everything a run left for people to read: logs, artifacts, report, ops store summary."""
    run_id = str(state.state_details.flow_run_id)
    APILogHandler().flush()
    logs, artifacts = asyncio.run(_evidence(run_id))
    with session_for(store) as session:
        summary = session.exec(select(FlowRunSummary).where(FlowRunSummary.flow_run_id == run_id)).one()
    assert artifacts and Path(result["report"]).read_text().strip()
    return "\n".join([*(log.message for log in logs), *(json.dumps(a.data, default=str) for a in artifacts),
                      Path(result["report"]).read_text(), summary.result_json, summary.summary_markdown,
                      state.message or ""])


def _by_name(result: dict) -> dict[str, dict]:
    return {c["name"]: c for c in result["certificates"]}


def test_sandbox_certificates_named_alerted_once(pg_sandbox, tmp_path, receiver):
    _, config = pg_sandbox
    name = f"cc-{uuid.uuid4().hex[:6]}"
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    hook_url = receiver.url(f"/hooks/{TOKEN}")
    apply_file(config, [("environment.name", name), ("environment.data_dir", str(tmp_path / "ops")),
                        ("ops_store.url", store),
                        ("alerts", [{"name": "run-log", "kind": "log", "min_severity": "medium"},
                                    {"name": "ops-hook", "kind": "webhook", "url": hook_url,
                                     "min_severity": "medium"}])], quiet=True)

    state = cert_check(environment=name, return_state=True)
    assert state.is_failed()
    result = state.result(raise_on_failure=False)
    assert "expired.pem expired 10.0 days ago" in state.message
    assert "expiring-5d.pem expires in 5.0 days" in state.message
    assert "expiring-25d.pem" not in state.message and "valid-1y.pem" not in state.message
    certs = _by_name(result)
    assert [c["name"] for c in result["certificates"]] == ["expired.pem", "expiring-5d.pem", "expiring-25d.pem",
                                                           "valid-1y.pem"]  # soonest first
    assert certs["valid-1y.pem"]["status"] == "pass"
    assert certs["valid-1y.pem"]["chain"] == "valid" and "sandbox CA" in certs["valid-1y.pem"]["chain_detail"]
    assert certs["valid-1y.pem"]["hostname"] == "match"
    assert certs["expiring-25d.pem"]["status"] == "warn" and certs["expiring-25d.pem"]["hostname"] == "match"
    assert certs["expired.pem"]["chain"] == "valid"  # judged at its last valid second
    assert certs["expired.pem"]["action"] == "renewal due: no renew_command configured"

    sent = {a["target"]: a for a in result["alerts"]}
    assert {t: a["severity"] for t, a in sent.items()} == {
        "cert:expired.pem": "critical", "cert:expiring-5d.pem": "high", "cert:expiring-25d.pem": "medium"}
    assert all(a["status"] == "sent" and a["channels"] == ["run-log", "ops-hook"] for a in sent.values())
    bodies = [body for _, body in receiver.bodies if not body["target"].startswith("flow:")]  # not the run's own
    assert {b["target"]: b["severity"] for b in bodies} == {
        "cert:expired.pem": "critical", "cert:expiring-5d.pem": "high", "cert:expiring-25d.pem": "medium"}
    assert "expiring-25d.pem (risk.tradeops.local) expires in 25.0 days" in next(
        b["text"] for b in bodies if b["target"] == "cert:expiring-25d.pem")
    assert TOKEN not in _exposed(state, result, store)

    again = cert_check(environment=name, return_state=True)
    assert again.is_failed()  # the certificates are still what they were ...
    certificate_alerts = [body for _, body in receiver.bodies if body["target"].startswith("cert:")]
    assert len(certificate_alerts) == 3  # ... but nobody is told twice about a certificate
    runs = [body["key"] for _, body in receiver.bodies if body["target"] == "flow:cert-check"]
    assert len(runs) == len(set(runs)) == 2  # each Failed run is notified once, with its own run id
    assert {a["status"] for a in again.result(raise_on_failure=False)["alerts"]} == {"already sent"}


# -- renewal --------------------------------------------------------------------------------------

RENEW_SCRIPT = '''\
"""A stand-in for certbot: mode, CA cert, CA key, then {cert} {key} {domain}."""
import sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tradeops.sandbox.certificates import private_key_pem, issue_certificate

mode, ca_cert, ca_key, cert, key, domain = sys.argv[1:]
ca = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
ca_private = serialization.load_pem_private_key(Path(ca_key).read_bytes(), None)
now = datetime.now(timezone.utc).replace(microsecond=0)
if mode == "hang":
    time.sleep(60)
if mode in ("garbage", "exit-1"):
    Path(cert).write_text("-----BEGIN CERTIFICATE-----\\ngarbage\\n-----END CERTIFICATE-----\\n")
    Path(key).write_text("garbage")
    print("renewal failed: rate limit", file=sys.stderr)
    sys.exit(1 if mode == "exit-1" else 0)
new_key = ec.generate_private_key(ec.SECP256R1())
names = ("other.example.test",) if mode == "other-name" else (domain,)
days = 10 if mode == "still-expiring" else 90
leaf = issue_certificate(ca, ca_private, new_key, names, now + timedelta(days=days), lifetime_days=90)
Path(cert).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
Path(key).write_bytes(private_key_pem(new_key))
'''


def _renewal_env(tmp_path: Path, receiver: AlertReceiver, mode: str, timeout: float = 30) -> tuple[str, Path, TestCA]:
    """An environment with one certificate set: renew.pem (5 days left) and its key, renewable."""
    ca = TestCA(tmp_path / "ca")
    certs_dir = tmp_path / "certs"
    certs_dir.mkdir()
    ca.issue(certs_dir / "renew.pem", ("renew.example.test",), 5)
    script = tmp_path / "renew.py"
    script.write_text(RENEW_SCRIPT)
    name = f"cr-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, str(script), mode, str(ca.cert_path), str(ca.key_path), "{cert}", "{key}", "{domain}"]
    config = tmp_path / "tradeops.toml"
    config.write_text(f"""
[environment]
name = "{name}"
data_dir = "ops"
[ops_store]
url = "sqlite:///ops/ops.db"
[[certificates]]
name = "edge"
directory = "certs"
ca_file = {json.dumps(str(ca.cert_path))}
hostnames = {{ "renew.pem" = ["renew.example.test"] }}
renew_command = {json.dumps(command)}
renew_timeout_seconds = {timeout}
[[alerts]]
name = "ops-hook"
kind = "webhook"
url = {json.dumps(receiver.url(f"/hooks/{TOKEN}"))}
min_severity = "high"
""")
    apply_file(config, quiet=True)
    return name, certs_dir, ca


def _audit(store: str) -> list[dict]:
    with session_for(store) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.operation == "certificate_renewal")).all()
    return [{"success": r.success, **json.loads(r.details)} for r in rows]


def test_renewal_with_a_good_certificate(tmp_path, receiver):
    name, certs_dir, _ = _renewal_env(tmp_path, receiver, "good")
    old_cert, old_key = (certs_dir / "renew.pem").read_bytes(), (certs_dir / "renew.key").read_bytes()

    state = cert_check(environment=name, return_state=True)
    result = state.result(raise_on_failure=False)
    assert state.is_completed(), state.message
    check = _by_name(result)["renew.pem"]
    assert check["action"] == "renewed" and check["status"] == "pass" and check["days_left"] > 89
    assert (certs_dir / "renew.pem").read_bytes() != old_cert
    assert stat.S_IMODE(os.stat(certs_dir / "renew.key").st_mode) == 0o600
    [renewal] = result["renewals"]
    backup = Path(renewal["backup_dir"])
    assert backup.parent.parent == tmp_path / "ops" / "cert-backups"
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o700
    assert (backup / "renew.pem").read_bytes() == old_cert and (backup / "renew.key").read_bytes() == old_key
    assert stat.S_IMODE(os.stat(backup / "renew.key").st_mode) == 0o600
    [audit] = _audit(f"sqlite:///{tmp_path / 'ops' / 'ops.db'}")
    assert audit["success"] is True and audit["outcome"] == "renewed" and audit["target"] == "edge"
    assert audit["old_fingerprint"] == renewal["old_fingerprint"] != audit["new_fingerprint"] == check["fingerprint"]
    assert not receiver.bodies  # nothing to alert about any more


@pytest.mark.parametrize("mode, timeout, reason", [
    ("garbage", 30, "the new renew.pem does not parse"),
    ("other-name", 30, "the new certificate does not cover renew.example.test"),
    ("still-expiring", 30, "the new certificate has 10.0 days left (needs more than 30)"),
    ("exit-1", 30, "renew command exited 1 (renewal failed: rate limit)"),
    ("hang", 1.5, "renew command timed out after 1.5 s"),
])
def test_a_bad_renewal_is_rolled_back(tmp_path, receiver, mode, timeout, reason):
    name, certs_dir, _ = _renewal_env(tmp_path, receiver, mode, timeout)
    before = {p.name: p.read_bytes() for p in certs_dir.iterdir()}

    state = cert_check(environment=name, return_state=True)
    result = state.result(raise_on_failure=False)
    assert state.is_failed()
    assert {p.name: p.read_bytes() for p in certs_dir.iterdir()} == before  # byte for byte, nothing added
    assert stat.S_IMODE(os.stat(certs_dir / "renew.key").st_mode) == 0o600
    assert f"renew.pem renewal rolled back: {reason}" in state.message
    assert "renew.pem expires in 5.0 days" in state.message
    [renewal] = result["renewals"]
    assert renewal["outcome"] == "rolled back" and renewal["old_fingerprint"] == _by_name(result)["renew.pem"]["fingerprint"]
    [audit] = _audit(f"sqlite:///{tmp_path / 'ops' / 'ops.db'}")
    assert audit["success"] is False and audit["outcome"] == "rolled back" and reason in audit["reason"]
    high = [body for _, body in receiver.bodies if body["summary"] == "certificate renew.pem: renewal rolled back"]
    assert len(high) == 1 and high[0]["severity"] == "high" and reason in high[0]["details"]


def test_an_undeliverable_alert_fails_the_run_naming_the_channel(tmp_path, receiver):
    ca = TestCA(tmp_path / "ca")
    (tmp_path / "certs").mkdir()
    ca.issue(tmp_path / "certs" / "month.pem", ("month.example.test",), 20)
    name = f"ca-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "tradeops.toml"
    config.write_text(f"""
[environment]
name = "{name}"
data_dir = "ops"
[ops_store]
url = "sqlite:///ops/ops.db"
[[certificates]]
name = "edge"
files = ["certs/month.pem"]
ca_file = {json.dumps(str(ca.cert_path))}
[[alerts]]
name = "ops-hook"
kind = "webhook"
url = {json.dumps(receiver.url(f"/hooks/{TOKEN}"))}
min_severity = "medium"
""")
    apply_file(config, quiet=True)
    receiver.status = 503

    state = cert_check(environment=name, return_state=True)
    assert state.is_failed()
    assert state.message == "alert not delivered, webhook channel 'ops-hook': HTTP 503 (1 alert)"
    result = state.result(raise_on_failure=False)
    assert TOKEN not in _exposed(state, result, f"sqlite:///{tmp_path / 'ops' / 'ops.db'}")

    receiver.status = 200  # the next run delivers it, once
    assert cert_check(environment=name, return_state=True).is_completed()
    assert cert_check(environment=name, return_state=True).is_completed()
    certificate_alerts = [body for _, body in receiver.bodies if body["target"].startswith("cert:")]
    assert [body["severity"] for body in certificate_alerts] == ["medium", "medium"]
    # the Failed run's own notification was tried once and refused with the 503 too: a later
    # `tradeops server sweep` delivers it (tests/test_zombie_runs.py), never another cert-check run
    assert [body["target"] for _, body in receiver.bodies].count("flow:cert-check") == 1
