"""prefect.yaml agrees with the calendar, and `prefect deploy --all` succeeds on a real server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from blocks import ALL_BLOCKS
from prefect.client.orchestration import get_client

from deployments.calendar import CALENDAR, ON_DEMAND, on_demand_jobs, scheduled_jobs, served_deployments
from flows import FLOWS, load_flow

REPO = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).parent / "prefect")


def _prefect_yaml() -> dict:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())


def test_prefect_yaml_lists_exactly_the_scheduled_existing_flows():
    declared = {
        d["name"]: (d["entrypoint"], d["schedules"], d["parameters"]) if d.get("schedules") else (d["entrypoint"],)
        for d in _prefect_yaml()["deployments"]
    }
    entrypoint = {name: path.replace(".", "/", 1).replace(":", ".py:", 1) for name, path in FLOWS.items()}
    expected = {job.deployment: (entrypoint[job.flow], [job.schedule.prefect_yaml()],
                                 {"environment": "default", **job.parameters}) for job in scheduled_jobs()}
    expected.update({job.deployment: (entrypoint[job.flow],) for job in on_demand_jobs()})
    assert declared == expected
    assert declared["health-check-shallow-every-30-seconds"][1] == [{"interval": 30, "timezone": "UTC"}]


def assert_schedule_of(job, deployment) -> None:
    """The deployment's one schedule is the job's: its cron (UTC, day_or) or its interval."""
    [schedule] = deployment.schedules
    if job.interval_seconds is not None:
        assert (schedule.schedule.interval, schedule.schedule.timezone) == (
            timedelta(seconds=job.interval_seconds), "UTC")
    else:
        assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.schedule.day_or) == (
            job.cron, "UTC", job.day_or)


def test_every_entrypoint_is_the_flow_of_that_name():
    for deployment in _prefect_yaml()["deployments"]:
        path, _, attribute = deployment["entrypoint"].partition(":")
        module = path.removesuffix(".py").replace("/", ".")
        job = next(j for j in (*CALENDAR, *ON_DEMAND) if j.deployment == deployment["name"])
        assert load_flow(job.flow).name == job.flow
        assert f"{module}:{attribute}" == FLOWS[job.flow]


def test_prefect_deploy_all_against_a_running_server(prefect_harness, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    pool = subprocess.run([PREFECT, "work-pool", "create", "tradeops-process", "--type", "process",
                           "--overwrite"], env=env, capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    try:
        deploy = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=300)
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        deployed = {d.name: d for d in asyncio.run(_read_deployments())}
    finally:
        # The session server's scheduler would otherwise keep adding runs of the 30-second shallow
        # check for the rest of the suite, and tests that count flow runs would see them appear.
        asyncio.run(_delete_deployments())
    for job in scheduled_jobs():
        deployment = deployed[job.deployment]
        assert deployment.work_pool_name == "tradeops-process"
        assert deployment.parameters == {"environment": "default", **job.parameters}
        assert_schedule_of(job, deployment)
    assert not deployed["restore-on-demand"].schedules  # started from the UI or the CLI
    assert deployed["health-check-shallow-every-30-seconds"].parameters == {"environment": "default",
                                                                           "level": "shallow"}


async def _read_deployments() -> list:
    async with get_client() as client:
        return await client.read_deployments()


async def _delete_deployments() -> None:
    """The deployments prefect.yaml names, with the runs their schedules created."""
    names = {d["name"] for d in _prefect_yaml()["deployments"]}
    async with get_client() as client:
        for deployment in await client.read_deployments():
            if deployment.name in names:
                await client.delete_deployment(deployment.id)


@pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)
def test_serve_builds_one_deployment_per_scheduled_job(tmp_path):
    from tradeops.cli.common import apply_file

    name = f"serve-{tmp_path.name[-8:]}".replace("_", "-").lower()
    (tmp_path / "tradeops.toml").write_text(
        f'[environment]\nname = "{name}"\n[access]\nuser = "svc-prefect"\n'
        'users = { svc-prefect = "system_administrator" }\n')
    apply_file(tmp_path / "tradeops.toml", quiet=True)
    served = {d.name: d for d in served_deployments(name)}
    assert set(served) == {job.deployment for job in (*scheduled_jobs(), *on_demand_jobs())}
    assert all(not served[job.deployment].schedules for job in on_demand_jobs())
    assert all("user:svc-prefect" in d.tags for d in served.values())  # their runs act as the service user
    for job in scheduled_jobs():
        deployment = served[job.deployment]
        assert deployment.parameters == {"environment": name, **job.parameters}
        assert_schedule_of(job, deployment)
    # one run at a time, as prefect.yaml's deployments
    yaml_limits = {d["name"]: d.get("concurrency_limit") for d in _prefect_yaml()["deployments"]}
    assert {d.name: d.concurrency_limit for d in served.values()} == yaml_limits == {n: 1 for n in served}


def test_block_types_register_with_the_prefect_cli(prefect_harness):
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    proc = subprocess.run([PREFECT, "block", "register", "-m", "blocks"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Successfully registered {len(ALL_BLOCKS)} blocks" in proc.stdout.replace("\n", " ")
