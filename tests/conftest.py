"""Test fixtures: one Prefect server per session (for the tests that need it), real PostgreSQL, a real
S3 server on loopback.

Nothing skips: a test that needs PostgreSQL or S3 and cannot have it fails with a clear message.

Resource markers (`postgres`, `s3`, `prefect`) are put on every test by the fixtures it uses
(RESOURCE_FIXTURES); a module that runs flows without requesting a fixture says
`pytestmark = pytest.mark.prefect`. A test without the `prefect` marker runs with PREFECT_API_URL
pointing at a dead address, so one that needs the server fails loudly instead of starting one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

# Before Prefect is imported anywhere: a private PREFECT_HOME, no analytics, a patient startup.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="tradeops-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "240"
os.environ["TRADEOPS_HOME"] = str(_SESSION_DIR / "var")
for _inherited in ("PREFECT_API_URL", "PREFECT_API_KEY", "TRADEOPS_DATABASE_URL", "TRADEOPS_CONFIG"):
    os.environ.pop(_inherited, None)

import psycopg2  # noqa: E402
import pytest  # noqa: E402

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


# A fixture in a test's closure -> the markers the test gets. The session Prefect server runs on
# PostgreSQL, so `prefect` implies `postgres`.
RESOURCE_FIXTURES: dict[str, tuple[str, ...]] = {
    "pg_server": ("postgres",),
    "s3_endpoint": ("s3",),
    "prefect_harness": ("prefect", "postgres"),
}
# A fixture parametrized over backends that requests the backend's fixture only for that parameter
# (request.getfixturevalue): the parameter value -> the markers.
RESOURCE_PARAMS: dict[str, tuple[str, ...]] = {"postgresql": ("postgres",), "s3": ("s3",)}
IMPLIED_MARKERS: dict[str, tuple[str, ...]] = {"prefect": ("postgres",)}
# Where tests without the `prefect` marker find the Prefect API: nothing listens on port 9 (discard).
DEAD_PREFECT_API = "http://127.0.0.1:9/api"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        have = {mark.name for mark in item.iter_markers()}
        wanted = set()
        for fixture in item.fixturenames:
            wanted.update(RESOURCE_FIXTURES.get(fixture, ()))
        for value in getattr(getattr(item, "callspec", None), "params", {}).values():
            if isinstance(value, str):
                wanted.update(RESOURCE_PARAMS.get(value, ()))
        for name in list(have | wanted):
            wanted.update(IMPLIED_MARKERS.get(name, ()))
        for name in sorted(wanted - have):
            item.add_marker(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and item.get_closest_marker("prefect") is None and \
            any(sign in report.longreprtext for sign in ("127.0.0.1:9", "Connection refused")):
        report.sections.append(("hint", "this test is not marked `prefect`, so its PREFECT_API_URL is the dead "
                                f"{DEAD_PREFECT_API}: if it runs flows, saves or loads blocks or calls the API, "
                                "mark it (or its module: pytestmark = pytest.mark.prefect) or request "
                                "the prefect_harness fixture"))
    return report


@pytest.fixture(autouse=True)
def prefect_api(request):
    """The session Prefect server for tests marked `prefect`; a dead API address for the others."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if request.node.get_closest_marker("prefect") is not None:
        yield request.getfixturevalue("prefect_harness")
        return
    with temporary_settings(updates={PREFECT_API_URL: DEAD_PREFECT_API}):
        yield DEAD_PREFECT_API


@pytest.fixture(scope="session")
def prefect_harness(pg_server: str):
    """One real Prefect API server for the whole session, `prefect server start` on a PostgreSQL
    database of its own (as in production: on SQLite, prefect's test harness answered a flow run's
    API calls 2-3x slower, its writes waiting on each other)."""
    import prefect.context
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    from tradeops.cli.local_server import local_prefect_server

    database = create_database(pg_server, "tradeops_test_prefect")
    conn = psycopg2.connect(database)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # the server's migrations need it
    conn.close()
    # Flow runs in this process send no heartbeats: prefect 3.8.8's heartbeat thread sleeps in
    # whole seconds and every sync flow run waits for it at its end, about 1 s a run (0.08 s
    # without). The zombie-run tests start their runs as processes with heartbeats of their own.
    try:
        with local_prefect_server(_SESSION_DIR / "prefect", free_port(),
                                  database.replace("postgresql://", "postgresql+asyncpg://")) as api, \
                temporary_settings(updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
                prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()):
            os.environ["TRADEOPS_TEST_API_URL"] = api
            yield api
            run_coro_as_sync(_drain_workers())  # logs and events out before the server stops
    finally:
        drop_database(database)
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


async def _drain_workers() -> None:
    """What prefect_test_harness does before it stops its server: ship what is queued."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    try:
        drained = APILogWorker.instance().drain()
        if inspect.isawaitable(drained):
            await drained
    except RuntimeError:  # never started
        pass
    drained = EventsWorker.drain_all()
    if inspect.isawaitable(drained):
        await drained


# -- PostgreSQL ----------------------------------------------------------------------------------

def _reachable(host: str, port: int, user: str) -> bool:
    try:
        psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


def _as_cluster_owner(args: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if not runuser:
        pytest.fail("tests run as root, and initdb needs a non-root user: runuser is not available")
    return [runuser, "-u", "postgres", "--", *args]


def _private_cluster(root: Path) -> tuple[str, int]:
    """initdb + pg_ctl a throwaway cluster when no server listens on 127.0.0.1:5432."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and initdb/pg_ctl are not on PATH: "
                    "install the PostgreSQL 15 server binaries or start a server (trust auth, user postgres)")
    port = free_port()
    cluster = Path(tempfile.mkdtemp(prefix="tradeops-pg-"))
    if os.geteuid() == 0:
        shutil.chown(cluster, "postgres", "postgres")
    data = cluster / "data"
    subprocess.run(_as_cluster_owner([initdb, "-D", str(data), "-U", PG_USER, "--auth=trust"]), check=True,
                   capture_output=True)
    subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-w", "-l", str(cluster / "pg.log"), "-o",
                                      f"-p {port} -k {cluster} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True)
    return str(data), port


@pytest.fixture(scope="session")
def pg_server(session_dir: Path):
    """Base URL of a PostgreSQL server tests may create databases on."""
    if _reachable(PG_HOST, PG_PORT, PG_USER) and not os.environ.get("TRADEOPS_TEST_PRIVATE_PG"):
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}"
        return
    try:
        data, port = _private_cluster(session_dir)
        print(f"PostgreSQL: private cluster on 127.0.0.1:{port}")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} and a private cluster failed "
                    f"to start: {exc.stderr.decode(errors='replace')[-500:]}")
    yield f"postgresql://{PG_USER}@{PG_HOST}:{port}"
    subprocess.run(_as_cluster_owner([shutil.which("pg_ctl"), "-D", data, "-m", "fast", "stop"]),
                   capture_output=True)
    shutil.rmtree(Path(data).parent, ignore_errors=True)


def create_database(server_url: str, prefix: str = "tradeops_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(f"{server_url}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return f"{server_url}/{name}"


def drop_database(url: str) -> None:
    server, _, name = url.rpartition("/")
    conn = psycopg2.connect(f"{server}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def pg_database(pg_server: str):
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    url = create_database(pg_server)
    yield url
    drop_database(url)


# -- S3 on loopback ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible HTTP server (moto) on 127.0.0.1, with test credentials in the env."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        pytest.fail(f"the S3 test server needs moto[server] (pip install -e '.[test]'): {exc}")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ACCESS_KEY_ID": "tradeops-test", "AWS_SECRET_ACCESS_KEY": "tradeops-test-secret",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"tradeops-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


# -- sandbox platform ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_sandbox(pg_server: str, session_dir: Path):
    """A small sandbox platform on PostgreSQL, its config applied as environment 'sandbox'."""
    from tradeops.cli.sandbox_setup import build_sandbox

    url = create_database(pg_server, "tradeops_test_sandbox")
    platform, config_path = build_sandbox(session_dir / "sandbox", url, "small", 7)
    yield platform, config_path
    stop_sandbox_api(platform.directory)
    drop_database(url)


def stop_sandbox_api(directory: Path) -> None:
    """The sandbox's API process, started by a health check's remediation, ends with the sandbox."""
    try:
        os.kill(int((Path(directory) / "run" / "api.pid").read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


def apply_as_own_environment(config: Path, folder: Path, prefix: str, overrides=()) -> tuple[str, str]:
    """Apply a sandbox config under a fresh environment name with a private data dir and ops store,
    so tests never share records; returns (environment name, ops store URL)."""
    from tradeops.cli.common import apply_file

    name, store = f"{prefix}-{uuid.uuid4().hex[:6]}", f"sqlite:///{folder / 'ops.db'}"
    apply_file(config, [("environment.name", name), ("environment.data_dir", str(folder / "ops")),
                        ("ops_store.url", store), *overrides], quiet=True)
    return name, store


@pytest.fixture
def backup_env(prefect_harness, pg_sandbox, s3_endpoint, s3_bucket, tmp_path):
    """The PostgreSQL sandbox as its own environment: private data dir, ops store and bucket."""
    import boto3

    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "bk", [("offsite.url", f"s3://{s3_bucket}/tradeops"),
                                                                    ("offsite.endpoint_url", s3_endpoint)])
    return SimpleNamespace(name=name, platform=platform, config=config, bucket=s3_bucket, data_dir=tmp_path / "ops",
                           s3=boto3.client("s3", endpoint_url=s3_endpoint), store=store)


def run_flow(flow, **params):
    """A flow run in-process: its final state and its result (a Failed run's report too)."""
    state = flow(return_state=True, **params)
    return state, state.result(raise_on_failure=False)


@pytest.fixture
def backed_up(backup_env):
    """backup_env with one daily set, verified; `set_id` names it."""
    from flows.daily_backup import daily_backup
    from flows.verify_backups import verify_backups

    state, result = run_flow(daily_backup, environment=backup_env.name)
    assert state.is_completed(), state.message
    state, _ = run_flow(verify_backups, environment=backup_env.name)
    assert state.is_completed(), state.message
    backup_env.set_id = result["set_id"]
    backup_env.set_dir = Path(result["set_dir"])
    return backup_env


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a `tradeops` subprocess: the session's Prefect server, and `extra`."""
    if "TRADEOPS_TEST_API_URL" not in os.environ:
        pytest.fail("cli_env() needs the session Prefect server: mark this test `prefect` "
                    "(or request the prefect_harness fixture)")
    return {**os.environ, "PREFECT_API_URL": os.environ["TRADEOPS_TEST_API_URL"], **extra}
