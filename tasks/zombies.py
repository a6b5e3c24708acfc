"""Zombie flow runs: runs left in Running after their process died (SIGKILL, OOM kill, a host
that went down). No hook runs for them, and nothing else ever ends them.

Two ways out, both marking the run Crashed through the orchestration rules (never forced, so a
run that finished meanwhile keeps its state):
- On a server with its event services (any `prefect server start`, the ephemeral server too):
  Prefect's documented zombie automation, `zombie_automation()`. Every flow run emits a
  `prefect.flow-run.heartbeat` event every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (default
  180, minimum 30); the proactive trigger fires when a heartbeat is followed, within `within`, by
  neither another heartbeat nor a terminal state, and changes the run's state to Crashed.
- Without them, or as a second line: `sweep_zombies()`. Each tradeops run labels itself with its
  host, pid and process start time (the `record_process` hook); a Running run whose process is
  gone from this host is a zombie, and so is one whose last heartbeat is older than
  `stale_after`. A run with neither kind of evidence is left alone and reported as unknown.

Either way no on_crashed hook runs, so the sweep sends the failure notification itself, and
`notify_missed_failures()` sends those of runs another party crashed (the automation, a worker).
`send_once` makes sure each channel hears of a run once.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.states import Crashed

from tasks.alerts import channels_sent
from tasks.environment import load_environment
from tasks.failure_alerts import environment_of, failure_alert_key, notify_failure

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
TERMINAL_EVENTS = ("prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                   "prefect.flow-run.Crashed")
# Prefect's default heartbeat is every 180 s: 15 minutes is five missed heartbeats.
DEFAULT_STALE_AFTER = timedelta(minutes=15)
DEFAULT_NOTIFY_WINDOW = timedelta(hours=1)
AUTOMATION_NAME = "tradeops: crash zombie flow runs"
HOST_LABEL, PID_LABEL, START_LABEL = "tradeops.host", "tradeops.pid", "tradeops.process_start"
PAGE = 200

logger = logging.getLogger("tradeops.zombies")


# -- whose process ---------------------------------------------------------------------------------

def process_start_token(pid: int) -> str | None:
    """When the process started (Linux /proc, clock ticks since boot): tells the process from a
    later one reusing its pid. None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start_token: str | None = None) -> bool:
    """The process exists, is not a zombie (exited, not reaped), and is the one recorded."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no /proc: kill(0) is all we know
    if fields[0] in ("Z", "X"):
        return False
    return start_token is None or fields[19] == start_token


def record_process(flow: Any, flow_run: Any, state: Any) -> None:
    """on_running hook: label the run with the host, pid and start time of its process, so a
    sweep on this host can tell that the process is gone (Prefect's runner records no pid, a
    process worker records a bare pid without its host)."""
    try:
        pid = os.getpid()
        labels = {HOST_LABEL: socket.gethostname(), PID_LABEL: str(pid)}
        token = process_start_token(pid)
        if token:
            labels[START_LABEL] = token
        with get_client(sync_client=True) as client:
            client.update_flow_run_labels(flow_run.id, labels)
    except Exception:  # noqa: BLE001 - without the labels the sweep falls back on heartbeats
        logger.warning("could not record the process of flow run %s", flow_run.id)


# -- the verdict ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZombieVerdict:
    flow_run_id: str
    flow_name: str
    verdict: str  # crashed, alive, unknown, finished (ended while we looked)
    evidence: str
    notification: str = ""  # the failure notification's status, for crashed runs

    def as_dict(self) -> dict:
        return asdict(self)


def last_heartbeat(client: Any, flow_run: Any) -> datetime | None:
    """The newest heartbeat event of the run; None when there is none (or no event API)."""
    since = flow_run.start_time or flow_run.expected_start_time or flow_run.created
    try:
        page = client.read_events(filter=EventFilter(
            occurred=EventOccurredFilter(since=since), event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run.id}"])), limit=1)
    except Exception:  # noqa: BLE001 - a server without events: no heartbeat evidence
        return None
    return page.events[0].occurred if page.events else None


def _local_pid(flow_run: Any) -> tuple[int, str | None] | None:
    """(pid, start token) of the run's process when it ran on this host, from our labels or a
    `host:pid` infrastructure_pid."""
    host = socket.gethostname()
    labels = flow_run.labels or {}
    if labels.get(HOST_LABEL) and labels.get(PID_LABEL):
        if labels[HOST_LABEL] != host:
            return None
        return int(labels[PID_LABEL]), labels.get(START_LABEL)
    recorded_host, _, pid = (flow_run.infrastructure_pid or "").rpartition(":")
    if recorded_host == host and pid.isdigit():
        return int(pid), None
    return None


def judge(client: Any, flow_run: Any, now: datetime, stale_after: timedelta) -> tuple[str, str]:
    """("zombie" | "alive" | "unknown", the evidence) for a run in Running."""
    local = _local_pid(flow_run)
    host = socket.gethostname()
    if local:
        pid, token = local
        if process_alive(pid, token):
            return "alive", f"process {pid} is running on {host}"
        return "zombie", f"its process {pid} on {host} is gone"
    beat = last_heartbeat(client, flow_run)
    if beat is None:
        return "unknown", "no heartbeat recorded, and its process is not on this host"
    silent = now - beat
    if silent > stale_after:
        return "zombie", f"no heartbeat for {silent.total_seconds() / 60:.0f} min (last {beat:%Y-%m-%d %H:%M:%S} UTC)"
    return "alive", f"last heartbeat {silent.total_seconds():.0f} s ago"


# -- sweeping -------------------------------------------------------------------------------------

def _flow_runs(client: Any, names: list[str], run_filter: FlowRunFilter) -> list[tuple[str, Any]]:
    """(flow name, flow run) for every run of the named flows that `run_filter` matches."""
    flows = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=names)))}
    if not flows:
        return []
    runs: list[Any] = []
    while True:
        page = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=names)),
                                     flow_run_filter=run_filter, limit=PAGE, offset=len(runs))
        runs += page
        if len(page) < PAGE:
            break
    return [(flows.get(run.flow_id, "?"), run) for run in runs]


def sweep_zombies(severities: Mapping[str, str], stale_after: timedelta = DEFAULT_STALE_AFTER,
                  notify: bool = True) -> list[ZombieVerdict]:
    """Mark Crashed every Running run of the flows `severities` names (flow name: the severity of
    its failure alert, flows/registry.py) whose process is gone, and notify its channels. Returns a
    verdict for every Running run looked at."""
    names = list(severities)
    now = datetime.now(timezone.utc)
    verdicts = []
    with get_client(sync_client=True) as client:
        running = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])))
        for flow_name, run in _flow_runs(client, names, running):
            verdict, evidence = judge(client, run, now, stale_after)
            if verdict != "zombie":
                verdicts.append(ZombieVerdict(str(run.id), flow_name, verdict, evidence))
                continue
            # Proposed, not forced: a run that reached a final state meanwhile keeps it.
            result = client.set_flow_run_state(run.id, Crashed(message=f"Zombie run: {evidence}."))
            if result.status != SetStateStatus.ACCEPT:
                verdicts.append(ZombieVerdict(str(run.id), flow_name, "finished",
                                              f"{evidence}; the state change was refused ({result.status.value})"))
                continue
            logger.warning("flow run %s (%s) marked Crashed: %s", run.id, flow_name, evidence)
            outcome = notify_failure(flow_name, run, result.state, severity=severities[flow_name]) if notify else None
            verdicts.append(ZombieVerdict(str(run.id), flow_name, "crashed", evidence,
                                          outcome.status if outcome else "not sent"))
    return verdicts


def notify_missed_failures(severities: Mapping[str, str],
                           window: timedelta = DEFAULT_NOTIFY_WINDOW) -> dict[str, str]:
    """Failure notifications for the Failed and Crashed runs expected to start within `window`
    whose channels have not all had one: runs crashed by the automation or a worker (no hook ran
    for them), and channels that refused the hook's. `severities`: the flows looked at, with the
    severity of their alerts. {flow run id: notification status}."""
    names = list(severities)
    since = datetime.now(timezone.utc) - window
    ended = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED,
                                                                                     StateType.CRASHED])),
                          expected_start_time=FlowRunFilterExpectedStartTime(after_=since))
    statuses, environments = {}, {}
    with get_client(sync_client=True) as client:
        candidates = _flow_runs(client, names, ended)
    for flow_name, run in candidates:
        if _all_channels_had_it(flow_name, severities[flow_name], run, environments):
            continue
        outcome = notify_failure(flow_name, run, run.state, severity=severities[flow_name])
        statuses[str(run.id)] = outcome.status if outcome else "not sent"
    return statuses


def _all_channels_had_it(flow_name: str, severity: str, flow_run: Any, environments: dict[str, tuple]) -> bool:
    """Every channel of the run's environment that wants its severity has had its notification
    (cheap: the ops store only, before building one). `environments` caches (env, channels)."""
    try:
        name = environment_of(flow_run)
        if name not in environments:
            env = load_environment(name)
            environments[name] = (env, env.block.alert_channels())
        env, channels = environments[name]
        wanting = {c.target for c in channels if c.wants(severity)}
        return wanting <= channels_sent(env.store_url, env.name, failure_alert_key(flow_run.id))
    except Exception:  # noqa: BLE001 - let notify_failure try, and log why it cannot
        return False


# -- the server-side automation ---------------------------------------------------------------------

def zombie_automation(within: timedelta, flow_names: Iterable[str]) -> Any:
    """Prefect's zombie automation ("Detect zombie flows" in Prefect's docs), limited to the
    tradeops flows: a run whose heartbeat is followed by no heartbeat and no final state within
    `within` is changed to Crashed. `within` must exceed the workers' heartbeat frequency."""
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    names = list(flow_names)
    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Marks Crashed the tradeops flow runs that stopped sending heartbeats (created by "
                    "`tradeops server setup-automations`; `tradeops server sweep` then notifies).",
        trigger=EventTrigger(
            after={HEARTBEAT_EVENT},
            expect={HEARTBEAT_EVENT, *TERMINAL_EVENTS},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": names}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"Zombie run: no heartbeat for {within.total_seconds():.0f} s.")],
    )


def ensure_zombie_automation(within: timedelta, flow_names: Iterable[str]) -> tuple[str, Any]:
    """Create the automation, or bring the one of that name up to date. ("created" | "updated", id)."""
    automation = zombie_automation(within, flow_names)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        if existing:
            client.update_automation(existing[0].id, automation)
            for extra in existing[1:]:
                client.delete_automation(extra.id)
            return "updated", existing[0].id
        return "created", client.create_automation(automation)
