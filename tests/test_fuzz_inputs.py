"""Fuzzing what a new user types: `tradeops.toml` files and command lines (Hypothesis).

For every generated example the command exits 0 or 2, never shows a Python traceback (nor logs
one), and when it exits 2 it names the file and writes nothing: no block document, no file or
folder, no flow run. Configuration files are valid documents mutated (values of the wrong type,
out-of-range numbers, tricky strings, keys removed or unknown ones added), then encoded in UTF-8 or
not, and sometimes truncated; command lines come from the CLI's grammar with values good and bad
and stray tokens.

Everything runs in-process (`tradeops.cli.main`), so a few hundred examples take seconds; one
subprocess run per kind proves the real entry point. Profiles: `fast` (the default, used by
`make test`) and `nightly` (`HYPOTHESIS_PROFILE=nightly`: many more examples).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import traceback
import uuid
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from state_snapshot import Snapshot, files_below
from tradeops.cli.main import main

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("fast", max_examples=150, **_COMMON)  # two fuzz tests: ~300 examples in all
settings.register_profile("nightly", max_examples=3000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


# -- running the CLI in-process ------------------------------------------------------------------

def run_cli(argv: list[str], capfd, caplog) -> tuple[int, str]:
    """Exit code and everything printed or logged; an exception escaping main() is the traceback
    a user would have seen."""
    capfd.readouterr()
    caplog.clear()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exits
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001 - exactly what must never happen
        pytest.fail(f"tradeops {argv!r} raised:\n{traceback.format_exc()}")
    out, err = capfd.readouterr()
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert not logged, f"tradeops {argv!r} logged a traceback: {logged}"
    assert "Traceback" not in out + err, f"tradeops {argv!r} printed a traceback:\n{out}{err}"
    return code, out + err


# -- TOML ----------------------------------------------------------------------------------------

def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(document: dict[str, Any]) -> str:
    """Tables as [sections], arrays of tables as [[sections]], the rest inline."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in document.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(i, dict) for i in v))]
    for key, value in document.items():
        if isinstance(value, dict):
            lines.append(f"\n[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
            for item in value:
                lines.append(f"\n[[{toml_key(key)}]]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


# -- configuration documents ---------------------------------------------------------------------

def base_document(folder: Path, name: str) -> dict[str, Any]:
    """Every section of tradeops.toml, valid on this machine (docs/configuration.md's example, made local)."""
    return {
        "environment": {"name": name, "description": "fuzzed", "data_dir": "data"},
        "ops_store": {"url": f"sqlite:///{folder / 'data' / 'ops.db'}"},
        "offsite": {"url": f"file://{folder / 'offsite'}", "retries": 3, "retry_delay_seconds": 2.0},
        "databases": [{"name": "platform", "url": f"sqlite:///{folder / 'platform.db'}",
                       "freshness_table": "regime_history", "freshness_column": "ts", "probe_query": "SELECT 1",
                       "maintenance_blackout": ["13:30-20:00", "22:00-02:00"], "dump_jobs": 2}],
        "git": [{"name": "strategies", "root": "repos"}],
        "logs": [{"name": "platform", "path": "logs", "pattern": "*.log", "rotate_bytes": 10485760,
                  "local_retention_days": 30, "offsite_retention_days": 365, "writer_grace_seconds": 10.0,
                  "reopen_command": ["true"]}],
        "certificates": [{"name": "tls", "directory": "certs", "endpoints": ["api.example.com:443"],
                          "hostnames": {"api.pem": ["api.example.com"]}, "renew_below_days": 30,
                          "renew_timeout_seconds": 300.0}],
        "configs": [{"name": "platform-config", "paths": ["config"]}],
        "alerts": [{"name": "oncall", "kind": "webhook", "url": "http://127.0.0.1:9/hook", "min_severity": "high"},
                   {"name": "run-log", "kind": "log"}],
        "experiments": {"database": "platform", "trades_query": "SELECT 1", "total_capital_usd": 100000000,
                        "settings": {"absolute_threshold": 0.5, "alpha": 0.05, "min_trades_per_group": 100}},
        "access": {"users": {"alice": "strategy_developer", "svc": "system_administrator"}, "user": "svc"},
        "strategies": {"approval_required": True},
        "metrics": {"pushgateway_url": "http://127.0.0.1:9091"},
        "backups": {"retention_days": {"daily:git_bundle": 45, "weekly": 84}},
        "health": {"disk_paths": ["."], "thresholds": {"disk_free_pct": {"warn": 25, "fail": 10}}},
        "maintenance": {"thresholds": {"unused_index_min_bytes": 0, "dead_tuple_ratio": 0.2},
                        "reindex_bloated_indexes": False},
    }


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the document (tables, list items and leaves)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths_of(item, (*prefix, i))
    return found


TRICKY_STRINGS = [
    "", " ", "x" * 300, "é", "😀", "\u0000", "\t", "-1", "1e999", "nan", "true", "None", "null",
    "${TRADEOPS_FUZZ_UNSET}", "${TRADEOPS_FUZZ_SET}", "${", "$HOME", "~nosuchuser/x", "../x", "data/../../x",
    "{folder}/afile", "{folder}/afile/below", "/dev/null",
    "postgresql://", "postgresql:garbage", "postgresql://u:p@h:99999/d", "postgresql://u:p@@h/::",
    "postgresql://h/db?colour=blue", "postgresql://127.0.0.1:1/x", "postgres://h/db", "mysql://h/db",
    "sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///{folder}/x.db", "sqlite:////dev/null",
    "s3://", "s3://B_ad/x", "s3://ok-bucket/prefix", "file://host/x", "file:///", "file:///{folder}/o",
    "http://", "http://h:0", "http://h:99999", "https://[::1]:443/x", "not a url", "gateway:9091",
    "25:99-26:00", "13:30", "10:00-10:00", "23:59-00:00", "host", "host:99999", "[::1]:443", ":443",
    "daily:git_bundle", "weekly:audit_log", "system_administrator", "nobody", "critical", "webhook",
]


def tricky_string(folder: Path) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(TRICKY_STRINGS).map(lambda s: s.replace("{folder}", str(folder))),
                     st.text(max_size=40))


NUMBERS = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 29, 30, 65535, 65536, 36500, 36501, 2**31, 2**40, 10**15, 9999999999]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 1e-300, 1e300, float("inf"), float("nan")]),
)


def any_value(folder: Path) -> st.SearchStrategy[Any]:
    scalars = st.one_of(NUMBERS, st.booleans(), tricky_string(folder), st.dates())
    return st.one_of(scalars, st.lists(scalars, max_size=3),
                     st.dictionaries(st.text(max_size=8), scalars, max_size=3))


@st.composite
def mutated_documents(draw, folder: Path, name: str) -> dict[str, Any]:
    document = base_document(folder, name)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(paths_of(document)))
        *parents, last = path
        node = document
        for part in parents:
            node = node[part]
        action = draw(st.sampled_from(["replace", "number", "string", "delete", "unknown key"]))
        if action == "delete":
            del node[last]
        elif action == "unknown key" and isinstance(node, dict):
            node[draw(st.text(min_size=1, max_size=12))] = draw(any_value(folder))
        elif action == "number":
            node[last] = draw(NUMBERS)
        elif action == "string":
            node[last] = draw(tricky_string(folder))
        else:
            node[last] = draw(any_value(folder))
    return contained(document, folder, name)


def contained(document: dict[str, Any], folder: Path, name: str) -> dict[str, Any]:
    """Keep every example inside its own folder and environment name: absolute paths and ~ go
    below the folder, `..` cannot climb out, and a valid environment name (or none) becomes the
    example's own, so an example that applies cleanly writes nothing anybody else uses."""
    def inside(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: inside(v) for k, v in value.items()}
        if isinstance(value, list):
            return [inside(v) for v in value]
        if not isinstance(value, str):
            return value
        value = value.replace("..", "__")
        for prefix in ("sqlite:///", ""):
            rest = value[len(prefix):] if value.startswith(prefix) else None
            if rest is not None and (rest.startswith("/") or rest.startswith("~")) and not rest.startswith(str(folder)):
                return prefix + str(folder / "abs" / rest.lstrip("/~"))
        return value

    document = inside(document)
    environment = document.setdefault("environment", {})
    if isinstance(environment, dict):
        given = environment.get("name")
        if given is None or (isinstance(given, str) and BLOCK_NAME.match(given) and len(given) <= 40):
            environment["name"] = name
    return document


ENCODINGS = st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"])


@pytest.fixture
def fuzz_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TRADEOPS_FUZZ_SET", "set-by-the-fuzzer")
    monkeypatch.delenv("TRADEOPS_FUZZ_UNSET", raising=False)
    for variable in ("TRADEOPS_DATABASE_URL", "TRADEOPS_PUSHGATEWAY_URL", "TRADEOPS_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", f"fz-never-applied-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("TRADEOPS_HOME", str(tmp_path / "home"))
    # the session's server: `serve` would start a local Prefect server of its own without one
    monkeypatch.setenv("PREFECT_API_URL", os.environ["TRADEOPS_TEST_API_URL"])
    monkeypatch.chdir(tmp_path)
    return tmp_path


@given(data=st.data())
def test_fuzzed_config_files_exit_0_or_2_and_write_nothing_on_2(fuzz_env, capfd, caplog, data):
    folder = Path(tempfile.mkdtemp(dir=fuzz_env))
    (folder / "afile").write_text("a regular file")
    name = f"fz-{uuid.uuid4().hex[:10]}"
    document = data.draw(mutated_documents(folder, name), label="document")
    raw = to_toml(document).encode(data.draw(ENCODINGS, label="encoding"), errors="replace")
    if data.draw(st.booleans(), label="truncated"):
        raw = raw[: data.draw(st.integers(min_value=0, max_value=len(raw)), label="cut at")]
    path = folder / "tradeops.toml"
    path.write_bytes(raw)
    check = data.draw(st.sampled_from([True, True, False]), label="--check")  # a clean full apply costs ~1 s

    # apply writes only blocks named after its environment: the example's own, new (contained())
    before = Snapshot(blocks={}, block_count=-1, flow_runs=-1, files=files_below(folder))
    code, output = run_cli(["apply", "--config", str(path), *(["--check"] if check else [])], capfd, caplog)
    event(f"exit {code}{' --check' if check else ''}")
    assert code in (0, 2), output
    if code == 2:
        assert str(path) in output, output  # the file is named
    if code == 2 or check:
        assert Snapshot.take(folder, blocks_like=f"{name}%", counts=False).changes_since(before) == [], output


# -- command lines -------------------------------------------------------------------------------

FLOW_NAMES = ["health-check", "daily-backup", "restore", "compliance-report", "experiment-evaluation",
              "pitr-restore", "dr-drill", "no-such-flow", ""]
ASSIGNMENTS = ["dry_run=true", "dry_run=maybe", "date=notadate", "date=2026-01-01", "targets=5",
               'targets=["db:platform"]', "period=2026-13", "unknown=1", "offsite.url=s3://b/p", "=", "noequals",
               ".=1", "a..b=1", "environment=5", "database_names={a=1}", "sequential=[1,2]", "set_id=",
               "target_time=yesterday", "target_time=latest", "pitr_target_time=2026-01-01T00:00:00Z",
               "rpo_window_seconds=abc"]
DATES = ["2026-01-01", "2026-13-45", "notadate", "", "2026-01-01T00:00:00+99:00", "9999-12-31", "0001-01-01",
         "2026-01-02T03:04:05Z", "1e999"]
NUMBER_TEXTS = ["0", "-1", "1", "30", "65535", "65536", "99999999999999999999", "1e999", "nan", "inf", "3.5",
                "abc", ""]


def cli_values(folder: Path) -> dict[str, list[str]]:
    files = {"missing": folder / "missing.toml", "dir": folder, "latin1": folder / "latin1.toml",
             "empty": folder / "empty.toml", "invalid": folder / "invalid.toml", "afile": folder / "afile",
             "trades": folder / "trades.csv", "bad-trades": folder / "bad.csv"}
    return {
        "config": [str(files[k]) for k in ("missing", "dir", "latin1", "empty", "invalid", "afile")],
        "trades": [str(files[k]) for k in ("missing", "dir", "latin1", "empty", "trades", "bad-trades")],
        "dir": [str(folder / "out"), str(files["afile"]), str(folder)],
        "url": ["garbage", "sqlite://", f"sqlite:///{folder / 'store.db'}", f"sqlite:///{folder / 'no' / 'x.db'}",
                "postgresql://127.0.0.1:1/x", "postgresql://u:p@h:99999/d", "mysql://h/db"],
        "date": DATES, "number": NUMBER_TEXTS, "flow": FLOW_NAMES, "assignment": ASSIGNMENTS,
        "split": ["90/10", "50/50", "100/0", "0/100", "90/20", "a/b", "90", "-10/110", ""],
        "capital": ["5%", "1000000", "0", "-5%", "150%", "1e999", "inf%", "x", "", "5%%"],
        "text": ["x", "", "momentum_alpha", "v1.2.0", "1.2.0", "draft", "-", "--", "é", "a" * 200],
        "address": ["127.0.0.1", "0.0.0.0", "not an address", "::1", "256.0.0.1", ""],
    }


def write_cli_files(folder: Path) -> None:
    (folder / "afile").write_text("a regular file")
    (folder / "latin1.toml").write_bytes('[environment]\ndescription = "Zürich"\n'.encode("latin-1"))
    (folder / "empty.toml").write_text("")
    (folder / "invalid.toml").write_text('[offsite]\nurl = "file://host/x"\n')
    rows = ["trade_id,group,pnl,ts"] + [f"{i},{'control' if i % 10 else 'variant'},{(i % 7) - 3}.5,"
                                        f"2026-01-0{1 + i % 5}T00:00:00Z" for i in range(40)]
    (folder / "trades.csv").write_text("\n".join(rows) + "\n")
    (folder / "bad.csv").write_text("trade_id,group\n1,control\n2,\n")


# Each command and its options: (option, kind of value) or (flag, None). Commands that do long real
# work when their input is valid (quickstart; serve, metrics serve and run on an applied
# environment) cannot get one here: the environment is never applied and every config is bad.
# `sandbox create` and `server` get only inputs they must refuse.
GRAMMAR: dict[tuple[str, ...], list[tuple[str, str | None]]] = {
    ("flows",): [("--json", None)],
    ("run", "{flow}"): [("--config", "config"), ("--set", "assignment"), ("--set", "assignment"),
                        ("--user", "text"), ("--json", None)],
    ("apply",): [("--config", "config"), ("--check", None)],
    ("serve",): [("--config", "config"), ("--port", "number"), ("--schedule", "text")],
    ("db", "upgrade"): [("--url", "url")],
    ("logs", "retrieve"): [("--from", "date"), ("--to", "date"), ("--type", "text"), ("--out", "dir"),
                           ("--target", "text"), ("--config", "config"), ("--json", None)],
    ("experiment", "create"): [("--strategy", "text"), ("--param", "assignment"), ("--split", "split"),
                               ("--capital", "capital"), ("--duration-days", "number"), ("--name", "text"),
                               ("--config", "config"), ("--user", "text"), ("--json", None)],
    ("experiment", "show", "{text}"): [("--config", "config"), ("--json", None)],
    ("experiment", "list"): [("--status", "text"), ("--json", None)],
    ("experiment", "conclude", "{text}"): [("--action", "text"), ("--note", "text")],
    ("experiment", "evaluate"): [("--trades", "trades"), ("--split", "split"), ("--fixed-horizon", None),
                                 ("--json", None)],
    ("strategy", "version", "{text}"): [("--bump", "text"), ("-m", "text"), ("--config", "config")],
    ("strategy", "diff", "{text}", "{text}"): [("--patch", None), ("--config", "config")],
    ("strategy", "promote", "{text}"): [("--user", "text")],
    ("audit", "verify"): [("--from", "date"), ("--to", "date"), ("--no-exports", None), ("--config", "config")],
    ("metrics", "serve"): [("--port", "number"), ("--address", "address"), ("--config", "config")],
    ("metrics", "show"): [("--config", "config")],
    ("incident", "list"): [("--status", "text"), ("--severity", "text"), ("--config", "config"), ("--json", None)],
    ("incident", "show", "{number}"): [("--config", "config"), ("--json", None)],
    ("sandbox", "create", "{dir-refused}"): [("--scale", "text"), ("--seed", "number"),
                                            ("--database-url", "url-refused")],
}
SERVER = {("server", "sweep"): ["--stale-minutes", "--notify-window-minutes"], ("server", "setup-automations"): ["--within"]}
BAD_NUMBERS = ["-1", "99999999999999999999", "1e999", "nan", "inf", "abc", ""]  # bad for each of them


COMMANDS = sorted({words[0] for words in GRAMMAR} | {words[0] for words in SERVER})


@st.composite
def command_lines(draw, folder: Path, command: str) -> list[str]:
    values = cli_values(folder)
    values["dir-refused"] = [str(folder / "afile"), str(folder)]  # a file; a non-empty non-sandbox folder
    values["url-refused"] = ["garbage", "mysql://h/db", "sqlite://"]
    if command == "server":  # always with a number it must refuse: a valid one would sweep the test server
        words = draw(st.sampled_from(sorted(SERVER)))
        return [*words, draw(st.sampled_from(SERVER[words])), draw(st.sampled_from(BAD_NUMBERS))]
    words = draw(st.sampled_from(sorted(w for w in GRAMMAR if w[0] == command)))
    argv = [draw(st.sampled_from(values[w[1:-1]])) if w.startswith("{") else w for w in words]
    for option, kind in draw(st.lists(st.sampled_from(GRAMMAR[words]), max_size=5)):
        argv.append(option)
        if kind is not None and draw(st.integers(min_value=0, max_value=9)) > 0:  # sometimes the value is missing
            argv.append(draw(st.sampled_from(values[kind]) if draw(st.booleans()) else st.text(max_size=12)))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):  # stray tokens anywhere after the command
        position = draw(st.integers(min_value=1, max_value=len(argv)))
        argv.insert(position, draw(st.sampled_from(["--", "-", "--help", "-x", "--json", "--nope=1"])
                                   | st.text(max_size=10)))
    return argv


@pytest.fixture
def cli_state(fuzz_env):
    """The files command lines refer to, and what was written before the next example runs."""
    folder = fuzz_env / "cli"
    folder.mkdir()
    write_cli_files(folder)
    return SimpleNamespace(folder=folder, written=Snapshot.take(fuzz_env, blocks_like=None))


@pytest.mark.parametrize("command", COMMANDS)
@settings(max_examples=max(10, settings.default.max_examples // len(COMMANDS)))  # the profile's budget, shared
@given(data=st.data())
def test_fuzzed_command_lines_exit_0_or_2_and_write_nothing_on_2(fuzz_env, cli_state, capfd, caplog, command, data):
    argv = data.draw(command_lines(cli_state.folder, command), label="argv")
    code, output = run_cli(argv, capfd, caplog)
    event(f"exit {code}")
    assert code in (0, 2), f"tradeops {argv!r}: exit {code}\n{output}"
    after = Snapshot.take(fuzz_env, blocks_like=None)  # block and flow run counts, every file
    if code == 2:
        assert after.changes_since(cli_state.written) == [], output
    cli_state.written = after  # an exit 0 may write (db upgrade creates its store)


# -- the real entry point ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, named", [
    (["apply", "--config", "{folder}/latin1.toml"], "not UTF-8 text"),
    (["apply", "--check", "--config", "{folder}/invalid.toml"], "offsite.url"),
    (["metrics", "serve", "--port", "99999"], "99999 is not a port"),
    (["run", "daily-backup", "--set", "dry_run=maybe"], "--set dry_run='maybe'"),
])
def test_the_installed_command_exits_2_without_a_traceback(fuzz_env, argv, named):
    folder = fuzz_env / "cli"
    folder.mkdir()
    write_cli_files(folder)
    env = {**os.environ, "PREFECT_API_URL": os.environ["TRADEOPS_TEST_API_URL"]}
    command = Path(sys.executable).with_name("tradeops")  # the console script pip installed
    done = subprocess.run([str(command), *[a.replace("{folder}", str(folder)) for a in argv]],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stdout + done.stderr
