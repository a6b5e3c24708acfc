"""tradeops.toml validation: a broken file exits 2 and names the key and the problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradeops.cli.main import main
from tradeops.cli.config import TradeopsConfig, apply_override, load_config, numeric_settings, parse_override
from tradeops.errors import ConfigError

VALID = """
[environment]
name = "prod-east"

[offsite]
url = "s3://backups/tradeops"
endpoint_url = "http://127.0.0.1:9000"

[[databases]]
name = "platform"
url = "postgresql://ops@db.internal:5432/platform"
freshness_table = "regime_history"

[[git]]
name = "strategies"
root = "/srv/strategies"

[health.thresholds.disk_free_pct]
warn = 25
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tradeops.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_file_loads_every_section(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.environment.name == "prod-east"
    assert config.offsite.url == "s3://backups/tradeops"
    assert config.databases[0].freshness_table == "regime_history"
    assert config.health.thresholds == {"disk_free_pct": {"warn": 25.0}}


@pytest.mark.parametrize("text, expected", [
    (VALID + "\n[backup]\nkeep = 3\n", "backup: unknown key"),
    (VALID.replace('freshness_table = "regime_history"', 'freshnes_table = "x"'),
     "databases[0].freshnes_table: unknown key"),
    (VALID.replace("s3://backups/tradeops", "ftp://backups/x"), "offsite.url: 'ftp://backups/x' is not a valid URL"),
    (VALID.replace("s3://backups/tradeops", "s3:///nobucket"), "offsite.url: 's3:///nobucket' has no bucket"),
    (VALID.replace('"http://127.0.0.1:9000"', '"127.0.0.1:9000"'), "offsite.endpoint_url:"),
    (VALID.replace("postgresql://ops@db.internal:5432/platform", "mysql://x/y"), "databases[0].url:"),
    (VALID.replace('root = "/srv/strategies"', "root = 42"), "git[0].root: Input should be a valid string"),
    (VALID.replace("warn = 25", 'warn = "lots"'), "health.thresholds.disk_free_pct.warn:"),
    (VALID.replace("[health.thresholds.disk_free_pct]", "[health.thresholds.disk_free]"),
     "health.thresholds: unknown metric 'disk_free'"),
    (VALID.replace('name = "prod-east"', 'name = "Prod East"'), "environment.name: String should match pattern"),
    (VALID + '\n[[databases]]\nname = "platform"\nurl = "sqlite:////x.db"\n', "name 'platform' is used twice"),
    ("[environment\nname=1", "not valid TOML"),
    (VALID + "\n[backups.retention_days]\n\"daily:git\" = 30\n", "backups.retention_days: unknown retention class"),
    (VALID + "\n[backups.retention_days]\n\"daily:git_bundle\" = 0\n", "backups.retention_days.daily:git_bundle: Input should be greater than or equal to 1"),
    (VALID + "\n[maintenance]\nthresholds = { unused_index_mb = 1 }\n",
     "maintenance.thresholds: unknown maintenance threshold(s) unused_index_mb"),
    (VALID.replace('freshness_table = "regime_history"', 'maintenance_blackout = ["13:30"]'),
     "databases[0].maintenance_blackout[0]: '13:30' is not a window HH:MM-HH:MM"),
    (VALID.replace('freshness_table = "regime_history"', 'queue_table = "orders; DROP TABLE x"'),
     "databases[0].queue_table: 'orders; DROP TABLE x' is not a plain SQL identifier"),
    (VALID.replace('freshness_table = "regime_history"', 'dump_jobs = 0'),
     "databases[0].dump_jobs: Input should be greater than or equal to 1"),
    (VALID.replace('[offsite]', '[offsite]\nretries = -1'), "offsite.retries: Input should be greater than or equal to 0"),
    # meaning, not only type (issue 21)
    (VALID.replace('[offsite]', '[offsite]\nretries = "3"'), "offsite.retries: Input should be a valid integer"),
    (VALID.replace('[offsite]', '[offsite]\nretry_delay_seconds = nan'), "offsite.retry_delay_seconds:"),
    (VALID.replace("s3://backups/tradeops", "s3://Backups_2/x"), "'Backups_2' is not a valid S3 bucket name"),
    (VALID.replace('"http://127.0.0.1:9000"', '"http://127.0.0.1:90000"'), "offsite.endpoint_url: "
     "'http://127.0.0.1:90000': the port must be a number from 1 to 65535"),
    (VALID + '[ops_store]\nurl = "sqlite://"\n', "ops_store.url: 'sqlite://' names no file"),
    (VALID + '[[certificates]]\nname = "tls"\nendpoints = ["api:99999"]\n', "certificates[0].endpoints: 'api:99999'"),
    (VALID + '[[alerts]]\nname = "hook"\nkind = "webhook"\nurl = "hooks.example.com/x"\n', "alerts[0].url:"),
    (VALID + '[[logs]]\nname = "p"\npath = "/l"\nreopen_command = [""]\n',
     "logs[0].reopen_command: the first item must name the program"),
    (VALID.replace("warn = 25", "warn = 250"), "disk_free_pct.warn = 250 is out of bounds: 0 to 100 %"),
    (VALID.replace("warn = 25", "warn = 5"), "disk_free_pct: warn (5) must be at or above fail (10)"),
    (VALID + "\n[maintenance]\nthresholds = { table_sizes_top = 2.5 }\n", "table_sizes_top: expected a whole number"),
    (VALID + "\n[maintenance]\nthresholds = { dead_tuple_ratio = 2 }\n", "dead_tuple_ratio = 2 is out of bounds: 0 to 1"),
    (VALID + "\n[experiments]\nsettings = { lift_threshold = 50 }\n",
     "experiments.settings: lift_threshold = 50 is out of bounds: above 0, at most 10"),
    (VALID + "\n[experiments]\ntotal_capital_usd = inf\n", "experiments.total_capital_usd: Input should be a finite number"),
    (VALID + '\n[metrics]\npushgateway_url_env = "PUSH GW"\n', "metrics.pushgateway_url_env: String should match"),
    (VALID.replace('name = "prod-east"', 'name = "prod-east"\ndescription = "a\\u0000b"'),
     "environment.description: contains a NUL character"),
    (VALID.replace("[environment]", "environment = 3\n[other]"), "environment: should be a table"),
])
def test_broken_file_exits_2_naming_the_key(tmp_path, capsys, text, expected):
    path = write(tmp_path, text)
    assert main(["apply", "--check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert str(path) in err


def test_missing_file_exits_2(tmp_path, capsys):
    assert main(["apply", "--check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "no such configuration file" in capsys.readouterr().err


def test_env_references_expand_and_a_missing_variable_names_the_key(tmp_path, monkeypatch):
    path = write(tmp_path, VALID.replace("postgresql://ops@db.internal:5432/platform", "${PLATFORM_DSN}"))
    monkeypatch.setenv("PLATFORM_DSN", "postgresql://ops:pw@db:5432/p")
    assert load_config(path).databases[0].url == "postgresql://ops:pw@db:5432/p"
    monkeypatch.delenv("PLATFORM_DSN")
    with pytest.raises(ConfigError, match=r"databases\[0\]\.url: environment variable PLATFORM_DSN is not set"):
        load_config(path)


def test_overrides_reach_tables_and_named_list_items(tmp_path):
    path = write(tmp_path, VALID)
    config = load_config(path, [parse_override("offsite.url=s3://other/prefix"),
                                parse_override("databases.platform.freshness_table=positions"),
                                parse_override("health.thresholds.disk_free_pct.fail=5")])
    assert config.offsite.url == "s3://other/prefix"
    assert config.databases[0].freshness_table == "positions"
    assert config.health.thresholds["disk_free_pct"] == {"warn": 25.0, "fail": 5.0}


def test_override_values_are_toml_literals():
    assert parse_override("dry_run=true") == ("dry_run", True)
    assert parse_override("limit=3") == ("limit", 3)
    assert parse_override("offsite.url=s3://b/p") == ("offsite.url", "s3://b/p")
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_override_of_unknown_list_item_is_an_error():
    with pytest.raises(ConfigError, match="no item 'databases.nope'"):
        apply_override({"databases": [{"name": "platform"}]}, "databases.nope.url", "x")


def test_configuration_page_lists_the_bounds_of_every_numeric_setting():
    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    rows = numeric_settings()
    assert len(rows) > 40
    missing = [row for row in rows if "| `%s` | %s | %s |" % row not in page]
    assert not missing, f"docs/configuration.md's bounds table lacks (or misstates) {missing}"


def test_every_default_lies_within_its_bounds():
    from tasks.backup.catalog import RETENTION_DAYS as RETENTION_CLASSES
    from tasks.experiments.statistics.settings import SETTING_BOUNDS, EvaluationSettings
    from tasks.health.thresholds import HEALTH_THRESHOLDS
    from tasks.maintenance.thresholds import MAINTENANCE_BOUNDS, MAINTENANCE_THRESHOLDS
    from tradeops.cli.config import RETENTION_DAYS
    from tradeops.config_values import within

    assert all(within(RETENTION_DAYS, days) for days in RETENTION_CLASSES.values())
    assert all(within(t.bounds, t.warn) and within(t.bounds, t.fail) and t.warns_before_failing(t.warn, t.fail)
               for t in HEALTH_THRESHOLDS.values())
    assert all(within(MAINTENANCE_BOUNDS[name], value) for name, value in MAINTENANCE_THRESHOLDS.items())
    defaults = EvaluationSettings()
    assert all(getattr(defaults, name) is None or within(bounds, getattr(defaults, name))
               for name, bounds in SETTING_BOUNDS.items())
    load_config_defaults = TradeopsConfig()  # every section's defaults pass the schema's own bounds
    assert load_config_defaults.environment.name == "default"


@pytest.mark.parametrize("url, expected", [
    ("postgresql://ops:hunter2@db.internal:5432/platform?sslmode=require", "ok"),
    ("postgresql:///platform?host=/var/run/postgresql", "ok"),
    ("postgresql://ops@[::1]:5432/platform", "ok"),
    ("postgresql://ops@db1:5432,db2:5433/platform", "ok"),  # libpq's multi-host form (not for the ops store)
    ("postgresql://ops@db1:5432,db2:99999/platform", "the port must be a number from 1 to 65535, not '99999'"),
    ("sqlite:////var/lib/platform.db", "ok"),
    ("postgresql://ops:hunter2@db.internal:5432/platform?sslpassword=x&colour=1", "invalid URI query parameter"),
    ("postgresql://ops@db/platform#frag", "ok"),
])
def test_database_urls_as_libpq_reads_them(url, expected):
    from tradeops.config_values import POSTGRES_SCHEMES, database_url

    try:
        database_url(url, (*POSTGRES_SCHEMES, "sqlite"))
        outcome = "ok"
    except ValueError as exc:
        outcome = str(exc)
        assert "hunter2" not in outcome and "sslpassword=x" not in outcome
    assert expected in outcome
