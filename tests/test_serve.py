"""`tradeops serve` on the embedded default (issue 20): a local Prefect server with its scheduler
starts beside the runner, a job scheduled a minute ahead runs and completes, and SIGTERM stops
both cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import free_port

TRADEOPS = str(Path(sys.executable).parent / "tradeops")


def flow_runs(api: str) -> list[dict]:
    request = urllib.request.Request(f"{api}/flow_runs/filter", data=json.dumps({"limit": 200}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


@pytest.mark.server
def test_serve_runs_a_scheduled_job_on_the_embedded_default_and_stops_on_sigterm(tmp_path):
    (tmp_path / "tradeops.toml").write_text('[environment]\nname = "served"\ndata_dir = "ops"\n')
    now = datetime.now(timezone.utc)
    at = (now + timedelta(minutes=2 if now.second > 40 else 1)).replace(second=0, microsecond=0)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "home")}
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen([TRADEOPS, "serve", "--config", "tradeops.toml", "--port", str(port),
                                "--schedule", f"health-check-every-5-minutes={at.minute} {at.hour} * * *",
                                # the 30-second shallow check moved to a day far off: this test waits for one run
                                # (tests/test_deployments.py checks the interval deployment serve builds)
                                "--schedule", "health-check-shallow-every-30-seconds=0 0 1 1 *"],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = at + timedelta(seconds=150)
        done = []
        while datetime.now(timezone.utc) < deadline and not done:
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                # the overridden deployment's runs (the shallow health check's carry level)
                done = [r for r in flow_runs(api) if r["state"]["type"] == "COMPLETED"
                        and r["parameters"] == {"environment": "served"}]
            except OSError:
                pass  # the server is still starting
            time.sleep(2)
        assert done, "no run completed: " + (tmp_path / "serve.log").read_text()[-3000:]
        assert done[0]["expected_start_time"].startswith(at.strftime("%Y-%m-%dT%H:%M"))
        os.kill(serving.pid, signal.SIGTERM)
        assert serving.wait(timeout=60) == 0
    finally:
        if serving.poll() is None:
            os.killpg(serving.pid, signal.SIGKILL)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "stopped serving; the local server is stopped too" in output
    with pytest.raises(OSError):  # the local server went with it
        urllib.request.urlopen(f"{api}/health", timeout=3)
