"""Health checks on plain inputs (`task.fn`), boundaries exactly as the runbooks put them."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks.health import (
    HEALTH_THRESHOLDS, check_backup_age_task, check_certificates_task, check_database_task,
    check_disk_free_task, check_memory_task, check_newest_log_task, thresholds_with,
)
from tradeops.store import BackupArtifact, BackupSet, session_for

T = HEALTH_THRESHOLDS
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("metric, value, expected", [
    ("disk_free_pct", 20.0, "pass"), ("disk_free_pct", 19.99, "warn"),
    ("disk_free_pct", 10.0, "warn"), ("disk_free_pct", 9.99, "fail"),
    ("memory_used_pct", 70.0, "pass"), ("memory_used_pct", 70.01, "warn"), ("memory_used_pct", 90.01, "fail"),
    ("certificate_days_left", 30.01, "pass"), ("certificate_days_left", 30.0, "warn"),
    ("certificate_days_left", 7.01, "warn"), ("certificate_days_left", 7.0, "fail"),
    ("certificate_days_left", -10, "fail"),
    ("connections_used_pct", 90.0, "warn"), ("connections_used_pct", 90.1, "fail"),
    ("backup_age_hours", 26.0, "pass"), ("backup_age_hours", 26.1, "warn"), ("backup_age_hours", 48.1, "fail"),
])
def test_threshold_boundaries(metric, value, expected):
    assert T[metric].grade(value) == expected


def test_environment_overrides_replace_only_the_given_level():
    merged = thresholds_with({"disk_free_pct": {"warn": 30}})
    assert (merged["disk_free_pct"].warn, merged["disk_free_pct"].fail) == (30, 10)
    assert HEALTH_THRESHOLDS["disk_free_pct"].warn == 20


def test_memory_from_meminfo():
    result = check_memory_task.fn(T["memory_used_pct"], {"MemTotal": 1000, "MemAvailable": 50})
    assert (result.status, result.value) == ("fail", 95.0)
    assert "95.0% used" in result.detail and "fail: > 90" in result.detail


def test_disk_free_matches_statvfs(tmp_path):
    result = check_disk_free_task.fn(str(tmp_path), T["disk_free_pct"])
    stat = os.statvfs(tmp_path)
    assert result.value == pytest.approx(100 * stat.f_bavail * stat.f_frsize / (stat.f_blocks * stat.f_frsize),
                                          abs=0.5)
    missing = check_disk_free_task.fn(str(tmp_path / "missing"), T["disk_free_pct"])
    assert missing.status == "fail" and "cannot read" in missing.detail


def _certificate(path, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, path.stem)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(not_after - timedelta(days=400)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_certificates_graded_by_days_left(tmp_path):
    files = [_certificate(tmp_path / "old.pem", NOW - timedelta(days=10)),
             _certificate(tmp_path / "soon.pem", NOW + timedelta(days=5)),
             _certificate(tmp_path / "month.pem", NOW + timedelta(days=25)),
             _certificate(tmp_path / "year.pem", NOW + timedelta(days=365))]
    (tmp_path / "broken.pem").write_text("not a certificate")
    results = check_certificates_task.fn(files + [str(tmp_path / "broken.pem")], [],
                                         T["certificate_days_left"], now=NOW)
    by_target = {r.target: r for r in results}
    assert {t: r.status for t, r in by_target.items()} == {
        "cert:old.pem": "fail", "cert:soon.pem": "fail", "cert:month.pem": "warn", "cert:year.pem": "pass",
        "cert:broken.pem": "fail"}
    assert by_target["cert:old.pem"].value == -10.0
    assert "expired 10.0 days ago" in by_target["cert:old.pem"].detail
    assert "expires in 5.0 days" in by_target["cert:soon.pem"].detail


def test_newest_log_age(tmp_path):
    for name, age_min in (("a.log", 600), ("b.log", 90), ("c.txt", 1)):
        (tmp_path / name).write_text("x\n")
        stamp = NOW.timestamp() - age_min * 60
        os.utime(tmp_path / name, (stamp, stamp))
    result = check_newest_log_task.fn("platform", str(tmp_path), "*.log", T["newest_log_age_minutes"], now=NOW)
    assert (result.status, result.value) == ("warn", 90.0)
    assert "b.log" in result.detail
    missing = check_newest_log_task.fn("platform", str(tmp_path / "nope"), "*.log",
                                       T["newest_log_age_minutes"], now=NOW)
    assert missing.status == "fail" and "does not exist" in missing.detail


def test_database_checks_on_postgresql(pg_database):
    conn = psycopg2.connect(pg_database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE regime_history (ts timestamptz, regime text)")
        cur.execute("INSERT INTO regime_history VALUES (%s, 'bull'), (%s, 'bear')",
                    (NOW - timedelta(minutes=200), NOW - timedelta(minutes=90)))
        cur.execute("SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend'")
        in_use, limit = cur.fetchone()
    results = {r.check: r for r in check_database_task.fn(
        "platform", pg_database, "platform-db", T, "SELECT 1", "regime_history", "ts", now=NOW)}
    conn.close()
    assert results["reachable"].status == "pass"
    # our own check connection is one more client than the count taken above
    assert results["connections"].value == pytest.approx(100 * (in_use + 1) / limit, abs=1e-3)
    assert (results["data_freshness"].status, results["data_freshness"].value) == ("warn", 90.0)


def test_unreachable_database_fails_with_the_reason():
    results = check_database_task.fn("platform", "postgresql://nobody@127.0.0.1:1/x", "db at port 1", T)
    assert [(r.check, r.status) for r in results] == [("reachable", "fail")]
    assert "db at port 1 does not answer" in results[0].detail


def test_database_checks_on_sqlite(tmp_path):
    import sqlite3

    path = tmp_path / "p.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE regime_history (ts TEXT)")
        conn.execute("INSERT INTO regime_history VALUES (?)", ((NOW - timedelta(hours=30)).isoformat(),))
    results = {r.check: r for r in check_database_task.fn(
        "platform", f"sqlite:///{path}", "p.db", T, "SELECT 1", "regime_history", "ts", now=NOW)}
    assert results["reachable"].status == "pass"
    assert results["connections"].status == "skip"
    assert (results["data_freshness"].status, results["data_freshness"].value) == ("fail", 1800.0)


def test_backup_age_from_the_catalog(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    empty = check_backup_age_task.fn(url, "env", T["backup_age_hours"], now=NOW)
    assert [(r.status, r.detail) for r in empty] == [("skip", "no complete backup set in the catalog yet")]
    with session_for(url) as session:
        session.add_all([
            BackupSet(set_id="s1", environment="env", kind="daily", status="complete"),
            BackupSet(set_id="s2", environment="env", kind="daily", status="pending"),
        ])
        session.flush()
        session.add_all([
            BackupArtifact(set_id="s1", target="platform", kind="pg_dump", path="x", sha256="0" * 64, size=1,
                           created_at=NOW - timedelta(hours=30)),
            BackupArtifact(set_id="s2", target="platform", kind="pg_dump", path="y", sha256="0" * 64, size=1,
                           created_at=NOW - timedelta(hours=1)),  # incomplete set: does not count
        ])
        session.commit()
    [result] = check_backup_age_task.fn(url, "env", T["backup_age_hours"], now=NOW)
    assert (result.target, result.status, result.value) == ("backup:platform", "warn", 30.0)


def test_certificate_of_a_live_tls_endpoint(tmp_path):
    """A real TLS server on loopback presenting a certificate that expires in 5 days."""
    import socket
    import ssl
    import threading

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=5))
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once():
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    [result] = check_certificates_task.fn([], [f"127.0.0.1:{port}"], T["certificate_days_left"], now=now)
    thread.join(5)
    listener.close()
    assert (result.target, result.status) == (f"cert:127.0.0.1:{port}", "fail")
    assert result.value == pytest.approx(5.0, abs=0.01)
