"""Issue 21 (and 22 items 7, 8, 10): every bad input found by trying tradeops as a new user would.

Each case exits 2 with the file (or argument), the key and the problem named, shows no Python
traceback, and writes nothing: no block document, no file or folder, no flow run. The retry
logging case (an S3 endpoint that is down) is in tests/test_offsite_faults.py and
tests/test_retry_logging.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from prefect.blocks.system import Secret

from state_snapshot import Snapshot
from tradeops.cli.common import parse_range_bound
from tradeops.cli.main import main
from tradeops.errors import UsageError

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

GOOD_KEY = "ab" * 32  # 64 hex digits: a 256-bit key


def valid_config(folder: Path, name: str) -> str:
    """A small environment that applies on this machine: SQLite target and store, a local offsite."""
    return f"""\
[environment]
name = "{name}"
data_dir = "{folder / 'data'}"

[ops_store]
url = "sqlite:///{folder / 'data' / 'ops.db'}"

[offsite]
url = "file://{folder / 'offsite'}"

[[databases]]
name = "platform"
url = "sqlite:///{folder / 'platform.db'}"
maintenance_blackout = ["13:30-20:00"]

[[logs]]
name = "platform"
path = "{folder / 'logs'}"
rotate_bytes = 10485760
local_retention_days = 30

[experiments]
settings = {{ absolute_threshold = 0.5 }}

[metrics]
pushgateway_url = "http://127.0.0.1:9091"

[backups]
retention_days = {{ "daily:tar" = 45 }}
"""


@pytest.fixture
def case(tmp_path):
    """(folder, environment name, config text, path to write it to)."""
    name = f"inv-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "env"
    folder.mkdir()
    return folder, name, valid_config(folder, name), folder / "tradeops.toml"


def apply_refused(path: Path, folder: Path, capsys, *expected: str) -> str:
    """`apply --check` and `apply` both exit 2 naming the file and `expected`; nothing is written."""
    for check in (["--check"], []):
        before = Snapshot.take(folder)
        code = main(["apply", "--config", str(path), *check])
        out, err = capsys.readouterr()
        assert code == 2, f"apply {check}: exit {code}\n{out}{err}"
        assert "Traceback" not in out + err
        assert str(path) in err
        for text in expected:
            assert text in err, err
        assert Snapshot.take(folder).changes_since(before) == []
    return err


def test_the_valid_config_applies(case, capsys):
    """The base of every case below is itself fine (so each case fails for its own reason)."""
    folder, name, text, path = case
    path.write_text(text)
    before = Snapshot.take(folder)
    assert main(["apply", "--config", str(path)]) == 0
    assert f"environment {name!r} applied" in capsys.readouterr().out
    changes = Snapshot.take(folder).changes_since(before)  # the snapshot sees what an apply writes
    assert f"block tradeops-environment/{name}: added" in changes and "file data/ops.db: added" in changes


# -- issue 21: tracebacks instead of errors ------------------------------------------------------

def test_latin1_file(case, capsys):
    folder, _, text, path = case
    path.write_bytes(text.replace('[environment]\n', '[environment]\ndescription = "Zürich site"\n').encode("latin-1"))
    apply_refused(path, folder, capsys, "not UTF-8 text: byte 0xfc at line 2, column 17", "save it as UTF-8")


def test_experiment_setting_of_the_wrong_type(case, capsys):
    folder, _, text, path = case
    path.write_text(text.replace("absolute_threshold = 0.5", 'alpha = "high"'))
    apply_refused(path, folder, capsys, "experiments.settings: alpha: Input should be a valid number, not 'high'")
    path.write_text(text.replace("absolute_threshold = 0.5", 'sequential = "yes"'))
    apply_refused(path, folder, capsys, "experiments.settings: sequential: Input should be a valid boolean")


def test_data_dir_is_a_regular_file(case, capsys):
    folder, _, text, path = case
    (folder / "afile").write_text("not a folder")
    path.write_text(text.replace(f'data_dir = "{folder / "data"}"', f'data_dir = "{folder / "afile"}"'))
    apply_refused(path, folder, capsys, f"environment.data_dir: {folder / 'afile'} exists and is not a folder")
    path.write_text(text.replace(f'data_dir = "{folder / "data"}"', f'data_dir = "{folder / "afile" / "below"}"'))
    apply_refused(path, folder, capsys, f"environment.data_dir: cannot create {folder / 'afile' / 'below'}: "
                                        f"{folder / 'afile'} is a file")


def test_encryption_key_secret_of_the_wrong_length(case, capsys):
    folder, name, text, path = case
    Secret(value="ab" * 16).save(f"{name}-short-key")  # 128 bits
    path.write_text(text + f'encryption_key_block = "{name}-short-key"\n')
    err = apply_refused(path, folder, capsys, f"backups.encryption_key_block: Secret block '{name}-short-key': "
                                              "the encryption key must be 32 bytes")
    assert "ab" * 16 not in err  # the value is never shown
    path.write_text(text + f'encryption_key_block = "{name}-no-such-key"\n')
    apply_refused(path, folder, capsys, f"backups.encryption_key_block: no Secret block named '{name}-no-such-key'")
    Secret(value=GOOD_KEY).save(f"{name}-key")
    path.write_text(text + f'encryption_key_block = "{name}-key"\n')
    assert main(["apply", "--check", "--config", str(path)]) == 0


# -- issue 21: accepted although invalid ---------------------------------------------------------

def test_empty_file(case, capsys):
    folder, _, _, path = case
    path.write_text("")
    apply_refused(path, folder, capsys, "declares nothing (an empty file?)")
    path.write_text("# only a comment\n\n")
    apply_refused(path, folder, capsys, "declares nothing")


@pytest.mark.parametrize("window", ["25:99-26:00", "13:30", "9:00-10:00", "10:00-10:00"])
def test_blackout_window_with_an_invalid_time(case, capsys, window):
    folder, _, text, path = case
    path.write_text(text.replace('"13:30-20:00"', f'"{window}"'))
    apply_refused(path, folder, capsys, f"databases[0].maintenance_blackout[0]: '{window}'")


def test_file_offsite_url_with_a_host(case, capsys):
    folder, _, text, path = case
    path.write_text(text.replace(f'"file://{folder / "offsite"}"', '"file://backuphost/srv/offsite"'))
    apply_refused(path, folder, capsys, "offsite.url: 'file://backuphost/srv/offsite' names a host ('backuphost')")


@pytest.mark.parametrize("url, problem", [
    ("postgresql://ops:hunter2@@db/::", "not a valid host name"),
    ("postgresql://ops@db:notaport/platform", "notaport"),
    ("postgresql://ops@db:99999/platform", "the port must be a number from 1 to 65535"),
    ("postgresql://ops@db/platform?colour=blue", 'invalid URI query parameter: "colour"'),
    ("postgresql://ops@db:5432", "names no database"),
    ("postgresql:garbage", "is not a PostgreSQL URL"),
])
def test_garbage_postgresql_url(case, capsys, url, problem):
    folder, _, text, path = case
    path.write_text(text.replace(f'"sqlite:///{folder / "platform.db"}"', f'"{url}"'))
    err = apply_refused(path, folder, capsys, "databases[0].url:", problem)
    assert "hunter2" not in err  # a password in the URL is never echoed
    path.write_text(text.replace(f'"sqlite:///{folder / "data" / "ops.db"}"', f'"{url}"'))
    apply_refused(path, folder, capsys, "ops_store.url:", problem)


def test_garbage_url_in_an_environment_variable(case, capsys, monkeypatch):
    folder, _, text, path = case
    monkeypatch.setenv("INV_PLATFORM_DSN", "postgresql://ops:hunter2@db:nope/platform")
    path.write_text(text.replace(f'url = "sqlite:///{folder / "platform.db"}"', 'url_env = "INV_PLATFORM_DSN"'))
    err = apply_refused(path, folder, capsys, "databases[0].url_env: environment variable INV_PLATFORM_DSN:")
    assert "hunter2" not in err


@pytest.mark.parametrize("url", ["not a url", "gateway:9091", "http://", "http://gw:99999", "ftp://gw:9091"])
def test_pushgateway_url_that_is_not_a_url(case, capsys, url):
    folder, _, text, path = case
    path.write_text(text.replace('"http://127.0.0.1:9091"', f'"{url}"'))
    apply_refused(path, folder, capsys, "metrics.pushgateway_url:")


@pytest.mark.parametrize("old, new, expected", [
    ("rotate_bytes = 10485760", "rotate_bytes = 99999999999999999", "logs[0].rotate_bytes: Input should be less than"),
    ("rotate_bytes = 10485760", "rotate_bytes = 1", "logs[0].rotate_bytes: Input should be greater than"),
    ("local_retention_days = 30", "local_retention_days = 9999999999",
     "logs[0].local_retention_days: Input should be less than or equal to 36500"),
    ('"daily:tar" = 45', '"daily:tar" = 9999999999',  # issue 22 item 7: OverflowError after the set was finalized
     "backups.retention_days.daily:tar: Input should be less than or equal to 36500"),
])
def test_absurd_integers(case, capsys, old, new, expected):
    folder, _, text, path = case
    path.write_text(text.replace(old, new))
    apply_refused(path, folder, capsys, expected)


def test_an_invalid_file_writes_no_block_even_when_its_first_sections_are_fine(case, capsys):
    """Validation covers the whole file before the first block is saved: a problem in the last
    section leaves the blocks of the first ones unsaved, even for an environment applied before."""
    folder, name, text, path = case
    path.write_text(text)
    assert main(["apply", "--config", str(path)]) == 0
    capsys.readouterr()
    path.write_text(text.replace("13:30-20:00", "14:00-21:00").replace('"daily:tar" = 45', '"daily:tar" = 0'))
    apply_refused(path, folder, capsys, "backups.retention_days.daily:tar")
    from blocks import DatabaseTarget

    assert DatabaseTarget.load(f"{name}-db-platform").maintenance_blackout == ["13:30-20:00"]


# -- issue 22 item 8: invalid flow parameters exit 2 before any run ------------------------------

@pytest.mark.parametrize("flow, assignment, named", [
    ("daily-backup", "dry_run=maybe", "--set dry_run='maybe': Input should be a valid boolean"),
    ("restore", "date=notadate", "--set date='notadate': Input should be a valid date"),
    ("restore", "targets=5", "--set targets=5: Input should be a valid list"),
])
def test_invalid_flow_parameter_exits_2_before_any_run(case, capsys, flow, assignment, named):
    folder, _, text, path = case
    path.write_text(text)
    before = Snapshot.take(folder)
    code = main(["run", flow, "--config", str(path), "--set", assignment])
    out, err = capsys.readouterr()
    assert code == 2 and named in err and "Traceback" not in out + err
    assert Snapshot.take(folder).changes_since(before) == []  # not applied, no run, no alert


# -- issue 22 item 10: CLI numbers ---------------------------------------------------------------

@pytest.mark.parametrize("argv, named", [
    (["metrics", "serve", "--port", "99999"], "argument --port: 99999 is not a port"),
    (["metrics", "serve", "--port", "http"], "argument --port: 'http' is not a port number"),
    (["server", "sweep", "--stale-minutes", "inf"], "argument --stale-minutes: inf is out of bounds"),
    (["server", "setup-automations", "--within", "99999999999"], "argument --within: 99999999999 is out of bounds"),
    (["experiment", "create", "--strategy", "s", "--capital", "1%", "--duration-days", "9999999999"],
     "argument --duration-days: 9999999999 is out of bounds"),
])
def test_out_of_range_cli_numbers_exit_2(tmp_path, capsys, argv, named):
    before = Snapshot.take(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and named in err and "Traceback" not in out + err
    assert Snapshot.take(tmp_path).changes_since(before) == []


@pytest.mark.parametrize("url, named", [
    ("garbage", "--url: 'garbage' is not a valid URL here"),
    ("sqlite:///{tmp}/missing/folder/ops.db", "--url: cannot open the ops store: unable to open database file"),
])
def test_db_upgrade_with_a_bad_url_exits_2(tmp_path, capsys, monkeypatch, url, named):
    monkeypatch.delenv("TRADEOPS_DATABASE_URL", raising=False)
    assert main(["db", "upgrade", "--url", url.format(tmp=tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert named in err and "Traceback" not in out + err


@pytest.mark.parametrize("text, key, end, expected", [
    # found by the fuzzer (audit verify --to 9999-12-31 raised OverflowError): the last day there is
    ("9999-12-31", "--to", True, "9999-12-31T23:59:59.999999+00:00"),
    ("9999-12-31", "--from", False, "9999-12-31T00:00:00+00:00"),
    ("0001-01-01", "--from", False, "0001-01-01T00:00:00+00:00"),
])
def test_range_bounds_at_the_ends_of_the_calendar(text, key, end, expected):
    assert parse_range_bound(text, key, end).isoformat() == expected


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_range_bound_outside_the_calendar_in_utc_is_a_usage_error(text):
    with pytest.raises(UsageError, match=r"--from .*out of the range of dates"):
        parse_range_bound(text, "--from", False)
