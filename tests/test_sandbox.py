"""Tests of tradeops.sandbox: the generated local trading platform.

They build real sandboxes (small scale) on the test PostgreSQL server (conftest's
pg_server) and in SQLite, and check the outcomes flows rely on:
repositories stock git reads, planted A/B scenarios, partitions, planted index
problems, logs, certificates, determinism and the refusals that protect user data.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest
import yaml
from cryptography import x509

from conftest import drop_database
from tradeops.sandbox import (
    PLANTED_SCENARIOS, PLATFORM_TABLES, QUEUE_TABLE, SandboxError, SandboxPlatform, create_sandbox,
)
from tradeops.sandbox.dataset import QUEUE_HISTORY_ORDERS
from tradeops.sandbox.sqlite_db import to_sqlite_ts

NOW = datetime(2026, 11, 22, 10, 30, 15, 250000, tzinfo=timezone.utc)
SEED = 7
MIB10 = 10 * 1024 * 1024
EXPECTED_CERTS = {"expired.pem": -10, "expiring-5d.pem": 5, "expiring-25d.pem": 25, "valid-1y.pem": 365}
EXPECTED_STRATEGIES = ("momentum_alpha", "mean_reversion", "stat_arb_pairs", "regime_switch", "market_making")

pytestmark = pytest.mark.postgres


class _Databases:
    """Hands out uniquely named PostgreSQL database URLs on the test server and drops them afterwards."""

    def __init__(self, server_url: str):
        self.server_url = server_url
        self.urls: list[str] = []

    def new_url(self) -> str:
        url = f"{self.server_url}/tradeops_test_sbx_{uuid.uuid4().hex[:12]}"
        self.urls.append(url)
        return url

    def admin_connection(self):
        conn = psycopg2.connect(f"{self.server_url}/postgres")
        conn.autocommit = True
        return conn

    def drop_all(self) -> None:
        for url in self.urls:
            drop_database(url)


@pytest.fixture(scope="module")
def sandbox_databases(pg_server):
    dbs = _Databases(pg_server)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="module")
def pg_platform(sandbox_databases, tmp_path_factory) -> SandboxPlatform:
    return create_sandbox(tmp_path_factory.mktemp("pg") / "sandbox", database_url=sandbox_databases.new_url(), now=NOW)


def _query(url: str, statement: str, params=None):
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def _heads(platform: SandboxPlatform) -> dict[str, str]:
    return {name: _git(platform.repos_dir / name, "rev-parse", "HEAD").stdout.strip() for name in platform.strategies}


def _pg_fingerprint(url: str) -> dict:
    counts = {table: _query(url, f"SELECT count(*) FROM {table}")[0][0] for table in PLATFORM_TABLES}
    counts["sum_pnl"] = _query(url, "SELECT sum(pnl::numeric) FROM trades")[0][0]
    return counts


def _group_stats(rows) -> dict[str, tuple[int, float, float]]:
    """{grp: (n, mean, sample variance)} from (grp, n, mean, var) rows."""
    return {grp: (n, float(mean), float(var)) for grp, n, mean, var in rows}


def _welch_t(stats) -> float:
    (nc, mc, vc), (nv, mv, vv) = stats["control"], stats["variant"]
    return (mv - mc) / math.sqrt(vc / nc + vv / nv)


# --- the returned value -------------------------------------------------------


def test_returned_platform_describes_the_sandbox(pg_platform):
    p = pg_platform
    assert p.directory.is_absolute() and p.directory.is_dir()
    assert p.repos_dir == p.directory / "repos"
    assert p.logs_dir == p.directory / "logs"
    assert p.config_dir == p.directory / "config"
    assert p.certs_dir == p.directory / "certs"
    assert p.strategies == EXPECTED_STRATEGIES
    assert p.certificates == EXPECTED_CERTS
    assert (p.scale, p.seed) == ("small", SEED)
    assert p.database_url.startswith("postgresql://")
    marker = json.loads((p.directory / ".tradeops-sandbox").read_text())
    assert marker["seed"] == SEED and marker["scale"] == "small"
    assert datetime.fromisoformat(marker["created_at"]) == NOW


# --- git ------------------------------------------------------------------------


def test_strategy_repos_are_clean_git_working_copies(pg_platform):
    repos = sorted(p.name for p in pg_platform.repos_dir.iterdir())
    assert repos == sorted(EXPECTED_STRATEGIES)
    for name in repos:
        repo = pg_platform.repos_dir / name
        fsck = _git(repo, "fsck", "--full", "--strict")
        assert fsck.returncode == 0, fsck.stderr
        assert not re.search(r"error|missing|broken|dangling", fsck.stdout + fsck.stderr, re.I), fsck.stdout
        assert _git(repo, "status", "--porcelain").stdout == ""
        assert _git(repo, "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"
        for path in ("strategy.py", "params.yaml", "README.md", "tests/test_strategy.py"):
            assert (repo / path).is_file(), path

        log = _git(repo, "log", "--all", "--format=%H %s")
        assert log.returncode == 0 and len(log.stdout.splitlines()) >= 10
        assert int(_git(repo, "rev-list", "--count", "main").stdout) >= 10

        branches = _git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").stdout.split()
        assert "main" in branches and "develop" in branches
        assert any(b.startswith("feature/") for b in branches), branches
        # develop is ahead of main, and the feature branch grows out of develop
        assert _git(repo, "merge-base", "--is-ancestor", "main", "develop").returncode == 0
        feature = next(b for b in branches if b.startswith("feature/"))
        assert _git(repo, "merge-base", "--is-ancestor", "develop", feature).returncode == 0

        tags = _git(repo, "tag", "--list").stdout.split()
        assert {"v1.0.0", "v1.1.0"} <= set(tags), tags
        assert all(re.fullmatch(r"v\d+\.\d+\.\d+", t) for t in tags)
        for tag in tags:
            assert _git(repo, "cat-file", "-t", tag).stdout.strip() == "tag"  # annotated


def test_generated_strategy_tests_pass(pg_platform):
    repo = pg_platform.repos_dir / "momentum_alpha"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert _git(repo, "status", "--porcelain", "--untracked-files=no").stdout == ""


# --- PostgreSQL ---------------------------------------------------------------


def test_postgres_schema_partitions_view_and_indexes(pg_platform):
    url = pg_platform.database_url
    tables = {r[0] for r in _query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert set(PLATFORM_TABLES) | {"tradeops_sandbox"} <= tables

    partitioned = _query(
        url,
        "SELECT c.relname, p.partstrat FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid",
    )
    assert ("trades", "r") in partitioned
    partitions = _query(
        url,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'trades'::regclass ORDER BY 1",
    )
    assert len(partitions) >= 4  # small: four months of history plus the current month
    assert all("FROM" in bound and "TO" in bound for _, bound in partitions)
    assert _query(url, "SELECT count(*) FROM ONLY trades")[0][0] == 0  # rows all live in partitions

    matviews = _query(url, "SELECT matviewname FROM pg_matviews WHERE schemaname = 'public'")
    assert matviews == [("experiment_performance_summary",)]
    indexes = dict(_query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"))
    assert "(status, created_at DESC)" in indexes["idx_experiments_status_created"]
    assert "(experiment_id, ts)" in indexes["idx_trades_experiment_ts"]
    assert "(experiment_id)" in indexes["idx_trades_experiment"]  # planted duplicate (a prefix)
    assert "positions" in indexes["idx_positions_unused"]  # planted never-used index
    view_indexes = [d for n, d in indexes.items() if "experiment_performance_summary" in d]
    assert any(d.startswith("CREATE UNIQUE INDEX") for d in view_indexes)

    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY experiment_performance_summary")
            cur.execute("SELECT count(*) FROM experiment_performance_summary")
            assert cur.fetchone()[0] > 10
    finally:
        conn.close()

    analyzed = _query(
        url,
        "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) AND last_analyze IS NULL",
        (["strategies", "experiments", "regime_history", "positions", "statistical_results"],),
    )
    assert analyzed == []

    assert _query(url, "SELECT max(ts), count(*) FROM regime_history")[0] == (NOW, 60 * 24)
    assert _query(url, "SELECT seed, scale, created_at FROM tradeops_sandbox") == [(SEED, "small", NOW)]


def test_postgres_order_queue_starts_drained(pg_platform):
    """runbook 004 Key Metrics: Queue Depth; the deep health check reads it (tasks/health/queue.py)."""
    [(rows, processed, waiting, newest)] = _query(
        pg_platform.database_url, f"SELECT count(*), count(processed_at), count(*) FILTER (WHERE processed_at IS NULL),"
                                  f" max(enqueued_at) FROM {QUEUE_TABLE}")
    assert (rows, processed, waiting) == (QUEUE_HISTORY_ORDERS, QUEUE_HISTORY_ORDERS, 0)
    assert newest == NOW - timedelta(minutes=1)


def test_only_the_planted_unused_index_has_never_been_scanned(pg_platform):
    statement = "SELECT indexrelname FROM pg_stat_user_indexes WHERE idx_scan = 0 ORDER BY 1"
    never_scanned = None
    for _ in range(50):  # statistics reach the collector shortly after the builder disconnects
        never_scanned = [r[0] for r in _query(pg_platform.database_url, statement)]
        if never_scanned == ["idx_positions_unused"]:
            break
        time.sleep(0.2)
    assert never_scanned == ["idx_positions_unused"]


def test_postgres_planted_ab_scenarios(pg_platform):
    url = pg_platform.database_url
    rows = _query(url, "SELECT experiment_id, experiment_name, status, split FROM experiments")
    experiments = {name: (eid, status, split) for eid, name, status, split in rows}
    statuses = {status for _, status, _ in experiments.values()}
    assert statuses <= {"draft", "active", "completed", "rolled_back"} and "active" in statuses

    def stats(name):
        eid = experiments[name][0]
        rows = _query(
            url,
            "SELECT grp, count(*), avg(pnl), var_samp(pnl) FROM trades WHERE experiment_id = %s GROUP BY grp",
            (eid,),
        )
        return _group_stats(rows)

    winner = stats("momentum_alpha-clear-winner")
    assert min(winner["control"][0], winner["variant"][0]) >= 600
    assert winner["variant"][1] > winner["control"][1] + 3 and _welch_t(winner) > 4

    loser = stats("mean_reversion-clear-loser")
    assert loser["variant"][1] < loser["control"][1] - 3 and _welch_t(loser) < -4

    flat = stats("stat_arb_pairs-no-effect")
    assert min(flat["control"][0], flat["variant"][0]) > 500
    assert abs(_welch_t(flat)) < 1.0

    few = stats("regime_switch-too-few-trades")
    assert 0 < few["control"][0] < 100 and 0 < few["variant"][0] < 100

    srm_name = "market_making-sample-ratio-mismatch"
    assert experiments[srm_name][2] == "90/10"
    srm = stats(srm_name)
    share = srm["control"][0] / (srm["control"][0] + srm["variant"][0])
    assert 0.65 <= share <= 0.75

    for sc in PLANTED_SCENARIOS:
        assert any(name.endswith(f"-{sc.name}") for name in experiments), sc.name

    # fat tails: the PnL mixture has positive excess kurtosis
    (kurt,) = _query(
        url,
        "SELECT avg(power(pnl - m, 4)) / power(avg(power(pnl - m, 2)), 2) - 3 FROM trades, "
        "(SELECT avg(pnl) AS m FROM trades WHERE experiment_id = 1 AND grp = 'control') s "
        "WHERE experiment_id = 1 AND grp = 'control'",
    )[0]
    assert kurt > 0.5


def test_same_seed_and_now_give_identical_sandboxes(pg_platform, sandbox_databases, tmp_path):
    twin = create_sandbox(tmp_path / "twin", database_url=sandbox_databases.new_url(), seed=SEED, now=NOW)
    assert _heads(twin) == _heads(pg_platform)
    assert _pg_fingerprint(twin.database_url) == _pg_fingerprint(pg_platform.database_url)
    for name in ("trading.log", "api.log", "risk-2026-10-01.log"):
        assert (twin.logs_dir / name).read_bytes() == (pg_platform.logs_dir / name).read_bytes(), name


def test_other_seed_gives_other_content(pg_platform, tmp_path):
    other = create_sandbox(tmp_path / "other", seed=SEED + 1, now=NOW)  # SQLite is enough here
    assert _heads(other)["momentum_alpha"] != _heads(pg_platform)["momentum_alpha"]


def test_refuses_a_postgres_database_that_is_not_a_sandbox(sandbox_databases, tmp_path):
    url = sandbox_databases.new_url()
    dbname = url.rsplit("/", 1)[1]
    admin = sandbox_databases.admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        admin.close()
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE customer_orders (id int PRIMARY KEY, amount numeric)")
            cur.execute("INSERT INTO customer_orders VALUES (1, 99.5)")
    finally:
        conn.close()

    target = tmp_path / "sbx"
    with pytest.raises(SandboxError, match="not a tradeops sandbox"):
        create_sandbox(target, database_url=url, now=NOW)
    assert _query(url, "SELECT id, amount FROM customer_orders") == [(1, 99.5)]
    assert _query(url, "SELECT to_regclass('trades') IS NULL")[0][0]
    assert not target.exists()  # refused before anything was written


def test_rebuilding_a_sandbox_in_place(pg_platform):
    before_heads, before_db = _heads(pg_platform), _pg_fingerprint(pg_platform.database_url)
    (pg_platform.logs_dir / "stray.log").write_text("left over\n")
    again = create_sandbox(pg_platform.directory, database_url=pg_platform.database_url, seed=SEED, now=NOW)
    assert again == pg_platform
    assert _heads(again) == before_heads
    assert _pg_fingerprint(again.database_url) == before_db
    assert not (again.logs_dir / "stray.log").exists()


# --- SQLite -------------------------------------------------------------------


def test_sqlite_variant(tmp_path):
    platform = create_sandbox(tmp_path / "lite", now=NOW)
    db_path = platform.directory / "platform.db"
    assert platform.database_url == f"sqlite:///{db_path}" and platform.database_url.startswith("sqlite:////")
    conn = sqlite3.connect(db_path)
    try:
        for table in PLATFORM_TABLES + ("tradeops_sandbox",):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        # the order queue starts drained: two hours of processed orders, none waiting
        assert conn.execute("SELECT count(*), count(processed_at), max(enqueued_at) FROM order_queue").fetchone() == (
            QUEUE_HISTORY_ORDERS, QUEUE_HISTORY_ORDERS, to_sqlite_ts(NOW - timedelta(minutes=1)))
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"idx_experiments_status_created", "idx_trades_experiment_ts", "idx_trades_experiment",
                "idx_positions_unused"} <= names  # fmt: skip
        counts = dict(
            conn.execute(
                "SELECT e.experiment_name || ':' || t.grp, count(*) FROM trades t "
                "JOIN experiments e USING (experiment_id) GROUP BY 1"
            ).fetchall()
        )
        assert counts["momentum_alpha-clear-winner:variant"] >= 600
        assert counts["stat_arb_pairs-no-effect:control"] > 500
        assert counts["regime_switch-too-few-trades:control"] < 100
        srm_control = counts["market_making-sample-ratio-mismatch:control"]
        srm_variant = counts["market_making-sample-ratio-mismatch:variant"]
        assert 0.65 <= srm_control / (srm_control + srm_variant) <= 0.75
        rows = conn.execute(
            "SELECT grp, trade_count, mean_pnl, stddev_pnl * stddev_pnl FROM experiment_performance_summary "
            "WHERE experiment_name = 'momentum_alpha-clear-winner'"
        ).fetchall()
        assert _welch_t(_group_stats(rows)) > 4
        before = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in PLATFORM_TABLES]
        before_pnl = conn.execute("SELECT sum(pnl) FROM trades").fetchone()[0]
    finally:
        conn.close()

    # deterministic on SQLite too, and rebuildable in place
    again = create_sandbox(platform.directory, now=NOW)
    conn = sqlite3.connect(db_path)
    try:
        assert [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in PLATFORM_TABLES] == before
        assert conn.execute("SELECT sum(pnl) FROM trades").fetchone()[0] == before_pnl
    finally:
        conn.close()
    assert _heads(again) == _heads(platform)


# --- logs -----------------------------------------------------------------------

_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (DEBUG|INFO|WARN|ERROR) (trading|risk|api) \S")


def _ts(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def test_logs_span_sixty_days_with_big_files(pg_platform):
    logs = pg_platform.logs_dir
    files = sorted(logs.iterdir())
    big = [f for f in files if f.stat().st_size > MIB10]
    assert len(big) >= 2, [(f.name, f.stat().st_size) for f in files]

    dated = sorted(
        datetime.strptime(m.group(1), "%Y-%m-%d").date()
        for f in files
        if (m := re.fullmatch(r"(?:trading|risk)-(\d{4}-\d\d-\d\d)\.log", f.name))
    )
    assert dated[0] == NOW.date() - timedelta(days=60)
    assert dated[-1] == NOW.date() - timedelta(days=1)
    assert {"trading.log", "api.log"} <= {f.name for f in files}

    oldest = logs / f"trading-{dated[0]:%Y-%m-%d}.log"
    with oldest.open() as fh:
        first = fh.readline()
    assert abs(_ts(first) - (NOW - timedelta(days=60))) < timedelta(days=1)

    for f in (oldest, logs / "risk-2026-11-01.log", logs / "api.log"):
        lines = f.read_text().splitlines()
        assert lines and all(_LINE.match(line) for line in lines), f.name
        stamps = [line[:23] for line in lines]
        assert stamps == sorted(stamps), f"{f.name}: timestamps not increasing"
        assert abs(f.stat().st_mtime - _ts(lines[-1]).timestamp()) < 0.01, f.name

    assert abs((logs / "trading.log").stat().st_mtime - NOW.timestamp()) < 120


# --- configs and certificates ---------------------------------------------------


def test_config_files(pg_platform):
    cfg = pg_platform.config_dir
    rbac = yaml.safe_load((cfg / "rbac.yml").read_text())
    assert {"strategy_developer", "senior_trader", "system_administrator", "compliance_officer"} <= set(rbac["roles"])
    assert rbac["users"] == {"alice": "strategy_developer", "bob": "senior_trader", "admin": "system_administrator"}
    limits = yaml.safe_load((cfg / "risk_limits.yaml").read_text())
    assert limits["max_capital_per_experiment_pct"] == 10
    assert limits["max_capital_per_strategy_pct"] == 5
    prometheus = yaml.safe_load((cfg / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"]
    env = (cfg / "production.env").read_text()
    assert "SECRET_KEY=${GENERATED_SECRET_KEY}" in env


def test_certificates_expire_as_announced(pg_platform):
    certs = pg_platform.certs_dir
    assert sorted(p.name for p in certs.glob("*.pem")) == sorted(EXPECTED_CERTS)
    for name, days in pg_platform.certificates.items():
        cert = x509.load_pem_x509_certificate((certs / name).read_bytes())
        remaining = (cert.not_valid_after_utc - NOW).total_seconds() / 86400
        assert abs(remaining - days) <= 1, (name, remaining)
        assert cert.not_valid_before_utc < NOW
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName)
        key = certs / (name[: -len(".pem")] + ".key")
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert b"PRIVATE KEY" in key.read_bytes()


# --- refusals -------------------------------------------------------------------


def test_refuses_a_non_empty_directory_that_is_not_a_sandbox(tmp_path):
    user_dir = tmp_path / "home"
    user_dir.mkdir()
    (user_dir / "thesis.tex").write_text("precious")
    (user_dir / "logs").mkdir()
    with pytest.raises(SandboxError, match="not a tradeops sandbox"):
        create_sandbox(user_dir, now=NOW)
    assert (user_dir / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in user_dir.iterdir()) == ["logs", "thesis.tex"]


def test_bad_scale_is_refused_with_the_allowed_values(tmp_path):
    with pytest.raises(SandboxError) as err:
        create_sandbox(tmp_path / "x", scale="huge")
    assert "'huge'" in str(err.value) and "small" in str(err.value) and "large" in str(err.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1/db", "sqlite:///tmp/x.db", "127.0.0.1:5432/db"])
def test_non_postgres_database_url_is_refused(tmp_path, url):
    with pytest.raises(SandboxError, match="postgresql://"):
        create_sandbox(tmp_path / "x", database_url=url)
    assert not (tmp_path / "x").exists()


def test_an_interrupted_build_can_be_retried(tmp_path):
    from tradeops.sandbox.workspace import BUILDING_MARKER_FILE, resolve_directory

    half_built = tmp_path / "half"
    (half_built / "repos" / "momentum_alpha").mkdir(parents=True)
    (half_built / BUILDING_MARKER_FILE).write_text("{}")
    assert resolve_directory(half_built) == half_built.resolve()  # ours, not refused
