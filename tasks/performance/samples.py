"""Where durations come from: the Prefect API's flow and task runs of one environment, and the
platform's request log. Each is a list of `DurationSample` (operation, when, seconds)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter, FlowFilterId, FlowRunFilter, FlowRunFilterStartTime, FlowRunFilterState,
    FlowRunFilterStateType, TaskRunFilter, TaskRunFilterFlowRunId, TaskRunFilterState, TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

PAGE = 200  # the API's largest page
FLOW_RUN_IDS_PER_QUERY = 100


@dataclass(frozen=True)
class DurationSample:
    source: str  # flow | task | request
    operation: str
    at: datetime  # when it ended (UTC)
    seconds: float


def _duration(run) -> float | None:  # noqa: ANN001 - a FlowRun or TaskRun
    """Time spent running (Prefect's total_run_time), else end - start."""
    if run.total_run_time and run.total_run_time.total_seconds() > 0:
        return run.total_run_time.total_seconds()
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    return None


def task_operation(flow_name: str, run) -> str:  # noqa: ANN001
    """A task run's operation: its flow and the task's name (the run name without Prefect's
    `-<3 characters>` suffix)."""
    name = re.sub(r"-[0-9a-z]{3}$", "", run.name or "")
    return f"{flow_name}/{name}"


def prefect_samples(environment: str, since: datetime, until: datetime) -> list[DurationSample]:
    """Completed flow runs of `environment` (their `environment` parameter) that started in the
    window, and their completed task runs."""
    samples: list[DurationSample] = []
    with get_client(sync_client=True) as client:
        runs = []
        while True:
            page = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since, before_=until),
                                              state=FlowRunFilterState(type=FlowRunFilterStateType(
                                                  any_=[StateType.COMPLETED]))),
                sort=FlowRunSort.START_TIME_ASC, limit=PAGE, offset=len(runs))
            runs += page
            if len(page) < PAGE:
                break
        runs = [r for r in runs if (r.parameters or {}).get("environment") == environment]
        flow_ids = list({r.flow_id for r in runs})
        names = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids)))} \
            if flow_ids else {}
        flow_of = {r.id: names.get(r.flow_id, "?") for r in runs}
        for run in runs:
            seconds = _duration(run)
            if seconds is not None and run.end_time:
                samples.append(DurationSample("flow", flow_of[run.id], run.end_time, seconds))
        ids = list(flow_of)
        for chunk in range(0, len(ids), FLOW_RUN_IDS_PER_QUERY):
            part = ids[chunk:chunk + FLOW_RUN_IDS_PER_QUERY]
            offset = 0
            while True:
                page = client.read_task_runs(
                    task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=part),
                                                  state=TaskRunFilterState(type=TaskRunFilterStateType(
                                                      any_=[StateType.COMPLETED]))),
                    sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=PAGE, offset=offset)
                offset += len(page)
                for task_run in page:
                    seconds = _duration(task_run)
                    if seconds is not None and task_run.end_time and task_run.flow_run_id in flow_of:
                        samples.append(DurationSample("task", task_operation(flow_of[task_run.flow_run_id], task_run),
                                                      task_run.end_time, seconds))
                if len(page) < PAGE:
                    break
    return samples


# Two request log formats: the platform process's request log (blocks/processes.py `request_log`,
# tradeops/sandbox/api_server.py): `<ISO time> <method> <path> <status> <duration ms>`; and the
# sandbox application log's api lines: `<ISO time>Z INFO api GET /api/v1/x status=200 duration_ms=12 ...`.
APP_LOG_LINE = re.compile(r"^(\S+Z) \w+ api (GET|POST|PUT|PATCH|DELETE) (\S+) status=(\d{3}) duration_ms=(\d+)")
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
NOT_OPERATIONS = {"/health"}  # the liveness probe: the health check's own requests
VERSION_SEGMENT = re.compile(r"^v\d+$")


def route_of(path: str) -> str:
    """`/api/v1/experiments/exp_7/results` -> `/api/v1/experiments/{id}/results`: after the version
    segment, collections and ids alternate; the ids become `{id}` so one route is one operation."""
    parts = path.split("?")[0].strip("/").split("/")
    version = next((i for i, p in enumerate(parts) if VERSION_SEGMENT.match(p)), None)
    if version is None:
        return "/" + "/".join(parts)
    tail = ["{id}" if i % 2 == 1 else p for i, p in enumerate(parts[version + 1:])]
    return "/" + "/".join(parts[:version + 1] + tail)


def parse_request(line: str) -> tuple[datetime, str, str, int, float] | None:
    """(time, method, path, status, seconds) of a request line in either format, else None."""
    match = APP_LOG_LINE.match(line)
    if match:
        at, method, path, status, ms = match.groups()
    else:
        parts = line.split()
        if len(parts) != 5 or parts[1] not in METHODS:
            return None
        at, method, path, status, ms = parts
    try:
        return (datetime.fromisoformat(at.replace("Z", "+00:00")), method, path, int(status), float(ms) / 1000.0)
    except ValueError:
        return None


def request_samples(lines: Iterable[str], since: datetime, until: datetime) -> Iterator[DurationSample]:
    """Successful requests (status below 400) in the window; errors and timeouts are not latency."""
    for line in lines:
        request = parse_request(line)
        if request is None:
            continue
        at, method, path, status, seconds = request
        if not since <= at <= until or status >= 400 or path.split("?")[0] in NOT_OPERATIONS:
            continue
        yield DurationSample("request", f"{method} {route_of(path)}", at, seconds)


def request_log_samples(files: Iterable[Path], since: datetime, until: datetime) -> list[DurationSample]:
    samples: list[DurationSample] = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            samples.extend(request_samples(handle, since, until))
    return samples

