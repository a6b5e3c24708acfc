"""tradeops.toml validation: a broken file exits 2 and names the key and the problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tradeops.cli import main
from tradeops.config import apply_override, load_config, parse_override
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
    (VALID.replace('freshness_table = "regime_history"', 'dump_jobs = 0'),
     "databases[0].dump_jobs: Input should be greater than or equal to 1"),
    (VALID.replace('[offsite]', '[offsite]\nretries = -1'), "offsite.retries: Input should be greater than or equal to 0"),
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
