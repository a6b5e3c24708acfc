"""log-archival end to end: rotation under live writers, the sandbox's logs with S3 offsite,
`tradeops logs retrieve`, and failures that keep the originals.

Writers are real processes (tests/log_writers.py) appending as fast as they can while the flow
rotates; every byte they wrote must be found again, in order, in the archives plus the live file.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from tradeops.files import sha256_file
from log_writers import expected
from test_log_compression import naive_range
from tradeops.cli.common import apply_file
from tradeops.cli.main import main
from tradeops.cli.config import load_config
from tradeops.errors import ConfigError
from tradeops.store import LogArchive, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)

WRITERS = Path(__file__).with_name("log_writers.py")


def write_config(tmp_path: Path, logs_dir: Path, offsite: str | None = None, **settings) -> tuple[str, Path]:
    name = f"logs-{uuid.uuid4().hex[:6]}"
    lines = [f'[environment]\nname = "{name}"\ndata_dir = "{tmp_path / "ops"}"\n',
             f'[ops_store]\nurl = "sqlite:///{tmp_path / "ops.db"}"\n']
    if offsite:
        lines.append(f"[offsite]\n{offsite}\n")
    lines.append(f'[[logs]]\nname = "platform"\npath = "{logs_dir}"\n')
    lines += [f"{key} = {json.dumps(value)}\n" for key, value in settings.items()]
    config = tmp_path / "tradeops.toml"
    config.write_text("".join(lines))
    return name, config


def run_archival(environment: str):
    from flows.log_archival import log_archival

    state = log_archival(environment=environment, return_state=True)
    return state, state.result(raise_on_failure=False)


def archive_rows(store: str, environment: str) -> list[LogArchive]:
    with session_for(store) as session:
        return list(session.exec(select(LogArchive).where(LogArchive.environment == environment)
                                 .order_by(LogArchive.id)).all())


def start_writer(mode: str, live: Path, stop: Path, past_bytes: int) -> subprocess.Popen:
    writer = subprocess.Popen([sys.executable, str(WRITERS), mode, str(live), str(stop)], stdout=subprocess.PIPE,
                              text=True)
    deadline = time.monotonic() + 30
    while not (live.exists() and live.stat().st_size > past_bytes):
        assert time.monotonic() < deadline and writer.poll() is None, "the writer did not start writing"
        time.sleep(0.02)
    return writer


def stop_writer(writer: subprocess.Popen, stop: Path) -> int:
    stop.touch()
    out, _ = writer.communicate(timeout=30)
    return int(out.strip())


def everything_kept(rows: list[LogArchive], archive_root: Path, logs_dir: Path) -> bytes:
    """The archives' contents in order, then whatever is still in the folder (rotated, then live)."""
    data = b"".join(gzip.decompress((archive_root / r.archive_name).read_bytes()) for r in rows)
    leftovers = sorted(p for p in logs_dir.iterdir() if p.name != "trading.log")
    return data + b"".join(p.read_bytes() for p in leftovers) + (logs_dir / "trading.log").read_bytes()


@pytest.mark.parametrize("mode, settings", [
    ("watched", {}),  # reopens by itself when the file is renamed
    ("held", {"reopen_command": ["kill", "-HUP", "{pid}"]}),  # reopens on the reopen command's signal
])
def test_lines_written_during_rotation_are_all_kept(tmp_path, mode, settings):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    live, stop = logs_dir / "trading.log", tmp_path / "stop"
    writer = start_writer(mode, live, stop, 300_000)
    settings = {k: [str(writer.pid) if a == "{pid}" else a for a in v] for k, v in settings.items()}
    name, config = write_config(tmp_path, logs_dir, rotate_bytes=256 * 1024, writer_grace_seconds=10, **settings)
    apply_file(config, quiet=True)
    try:
        state, result = run_archival(name)
        written_after = live.stat().st_size
        time.sleep(0.3)  # the writer is still going: the new live file keeps growing
        assert live.stat().st_size > written_after
    finally:
        count = stop_writer(writer, stop)
    assert state.is_completed(), state.message
    [directory] = result["directories"]
    assert [r["file"] for r in directory["rotated"]] == ["trading.log"]
    assert directory["waiting"] == []
    rows = archive_rows(f"sqlite:///{tmp_path / 'ops.db'}", name)
    assert len(rows) == 1 and rows[0].lines > 0
    assert everything_kept(rows, tmp_path / "ops" / "log-archive", logs_dir) == expected(count)


def test_a_writer_that_never_lets_go_delays_archiving_and_loses_nothing(tmp_path):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    live, stop = logs_dir / "trading.log", tmp_path / "stop"
    writer = start_writer("stubborn", live, stop, 300_000)
    name, config = write_config(tmp_path, logs_dir, rotate_bytes=256 * 1024, writer_grace_seconds=0.5)
    apply_file(config, quiet=True)
    try:
        state, result = run_archival(name)
    finally:
        count = stop_writer(writer, stop)
    assert state.is_completed(), state.message
    [directory] = result["directories"]
    [waiting] = directory["waiting"]
    assert waiting["pids"] == [writer.pid] and waiting["file"].startswith("trading-")
    assert (logs_dir / waiting["file"]).exists() and directory["archived"] == []
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    assert archive_rows(store, name) == []

    # the writer is gone: the next run archives what it wrote, all of it
    state, result = run_archival(name)
    assert state.is_completed(), state.message
    assert [a["file"] for a in result["directories"][0]["archived"]] == [waiting["file"]]
    assert not (logs_dir / waiting["file"]).exists()
    assert everything_kept(archive_rows(store, name), tmp_path / "ops" / "log-archive", logs_dir) == expected(count)


def test_sandbox_logs_archived_offsite_and_retrieved_by_range(pg_sandbox, s3_endpoint, s3_bucket, tmp_path,
                                                              monkeypatch):
    import boto3

    platform, config = pg_sandbox
    originals = tmp_path / "originals"
    shutil.copytree(platform.logs_dir, originals)
    logs_dir = tmp_path / "logs"
    shutil.copytree(platform.logs_dir, logs_dir, copy_function=shutil.copy2)
    name, store = f"arch-{uuid.uuid4().hex[:6]}", f"sqlite:///{tmp_path / 'ops.db'}"
    apply_file(config, [("environment.name", name), ("environment.data_dir", str(tmp_path / "ops")),
                        ("ops_store.url", store), ("offsite.url", f"s3://{s3_bucket}/tradeops"),
                        ("offsite.endpoint_url", s3_endpoint), ("logs.platform.path", str(logs_dir))], quiet=True)

    state, result = run_archival(name)
    assert state.is_completed(), state.message
    [directory] = result["directories"]
    assert [r["file"] for r in directory["rotated"]] == ["trading.log"]  # the live file past 10 MiB
    assert sorted(p.name for p in logs_dir.iterdir()) == ["api.log", "trading.log"]  # api.log is small
    assert (logs_dir / "trading.log").stat().st_size == 0

    rows = archive_rows(store, name)
    dated = sorted(p.name for p in originals.iterdir() if p.name not in ("api.log", "trading.log"))
    assert sorted(r.source_name for r in rows if r.source_name in dated) == dated
    for row in rows:  # every archive holds exactly its original's bytes
        source = originals / (row.source_name if row.source_name in dated else "trading.log")
        assert row.original_sha256 == sha256_file(source), row.source_name
    now = datetime.now(timezone.utc)
    old = [r for r in rows if r.last_at < now - timedelta(days=30)]
    recent = [r for r in rows if r not in old]
    assert old and recent
    assert all(r.local_deleted_at is not None and not (tmp_path / "ops" / "log-archive" / r.archive_name).exists()
               for r in old)
    assert all(r.local_deleted_at is None for r in recent)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
            for o in page.get("Contents", [])}
    assert {f"tradeops/{r.offsite_key}" for r in rows} <= keys
    oldest = min(old, key=lambda r: r.last_at)
    body = s3.get_object(Bucket=s3_bucket, Key=f"tradeops/{oldest.offsite_key}")["Body"].read()
    assert gzip.decompress(body) == (originals / oldest.source_name).read_bytes()

    # retrieval: three old days (offsite only, HTTP range reads) and an hour of today's rotated log
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    days = sorted(r.source_name for r in old if r.source_name.startswith("trading-"))[3:6]
    first_day, last_day = days[0][8:18], days[-1][8:18]
    out = tmp_path / "out"
    assert main(["logs", "retrieve", "--from", first_day, "--to", last_day, "--type", "trading",
                 "--out", str(out), "--json"]) == 0
    got = Path(next(out.iterdir())).read_bytes()
    assert got == b"".join((originals / day).read_bytes() for day in days)
    today = now.strftime("%Y-%m-%d")
    assert main(["logs", "retrieve", "--from", f"{today}T00:10:00", "--to", f"{today}T00:20:00", "--type", "trading",
                 "--out", str(tmp_path / "out2")]) == 0
    start = datetime.fromisoformat(f"{today}T00:10:00+00:00")
    expected_lines = naive_range((originals / "trading.log").read_bytes(), start, start + timedelta(minutes=10))
    assert expected_lines and Path(next((tmp_path / "out2").iterdir())).read_bytes() == expected_lines

    # a second run finds nothing new and records nothing twice
    state, result = run_archival(name)
    assert state.is_completed(), state.message
    assert result["directories"][0]["archived"] == [] and len(archive_rows(store, name)) == len(rows)


def test_retrieve_reads_only_the_members_of_the_range(tmp_path, capsys):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    day = logs_dir / "trading-2026-11-20.log"
    moments = [datetime(2026, 11, 20, tzinfo=timezone.utc) + timedelta(seconds=i) for i in range(0, 86400, 2)]
    day.write_text("".join(f"{m:%Y-%m-%dT%H:%M:%S}.000Z INFO trading tick={i} {'y' * 90}\n"
                           for i, m in enumerate(moments)))
    os.utime(day, (moments[-1].timestamp(), moments[-1].timestamp()))  # written to the day's end, then left
    original = day.read_bytes()
    name, config = write_config(tmp_path, logs_dir)
    apply_file(config, quiet=True)
    state, _ = run_archival(name)
    assert state.is_completed(), state.message
    assert main(["logs", "retrieve", "--config", str(config), "--from", "2026-11-20T12:00:00",
                 "--to", "2026-11-20T12:05:00", "--type", "trading", "--out", str(tmp_path / "out"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["lines"] == 150 and answer["members_read"] == 1 and answer["members_skipped"] >= 3
    start = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    assert Path(answer["output"]).read_bytes() == naive_range(original, start, start + timedelta(minutes=5))


def test_retrieve_usage_errors_exit_2(tmp_path, capsys):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    name, config = write_config(tmp_path, logs_dir)
    base = ["logs", "retrieve", "--config", str(config), "--out", str(tmp_path / "out")]
    assert main([*base, "--from", "2026-11-02", "--to", "2026-11-01", "--type", "trading"]) == 2
    assert "is not before" in capsys.readouterr().err
    assert main([*base, "--from", "yesterday", "--to", "2026-11-01", "--type", "trading"]) == 2
    assert "--from 'yesterday'" in capsys.readouterr().err
    assert main([*base, "--from", "2026-11-01", "--to", "2026-11-02", "--type", "trading"]) == 2
    assert "no archives of that type" in capsys.readouterr().err


def test_an_archive_that_cannot_be_written_keeps_the_original(tmp_path):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    old = logs_dir / "risk-2026-10-01.log"
    old.write_text("2026-10-01T00:00:00Z INFO risk ok\n")
    os.utime(old, (0, 0))
    blocker = tmp_path / "not-a-folder"
    name, config = write_config(tmp_path, logs_dir, archive_dir=str(blocker / "archive"))
    apply_file(config, quiet=True)  # apply refuses an archive_dir below a file: it turns into one after
    blocker.write_text("a file where the archive folder should be")
    state, result = run_archival(name)
    assert state.is_failed()
    assert "risk-2026-10-01.log: not archived, original kept" in state.message
    assert old.read_text() == "2026-10-01T00:00:00Z INFO risk ok\n"
    assert archive_rows(f"sqlite:///{tmp_path / 'ops.db'}", name) == []


def test_offsite_retention_shorter_than_local_is_a_config_error(tmp_path):
    _, config = write_config(tmp_path, tmp_path, local_retention_days=30, offsite_retention_days=7)
    with pytest.raises(ConfigError, match=r"logs\[0\]: .*offsite_retention_days \(7\) is shorter"):
        load_config(config)
