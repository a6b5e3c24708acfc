"""Failure notifications: a tradeops flow run that fails or crashes tells its environment's alert
channels which flow, which run, which task(s) failed and why, routed by severity (runbook 001
"Alert Channels").

Every flow is decorated with `@flow(name=..., **FAILURE_HOOKS)`. The hooks run in the flow's own
process, so they cannot see a run whose process was killed; `tasks.zombies` marks those Crashed
and notifies through `notify_failure` too. The alert key is the flow run id, and `send_once`
records each channel that accepted it: whichever of hook and sweep comes first notifies, the other
finds it done, and a channel that refused gets it on the next sweep.

A hook never raises: a notification that cannot be built or delivered is logged and the run's
own state stands. Nothing secret goes out: the reason is passed through `redact` with every secret
value of the environment's blocks (channel URLs, DSNs, keys) before it is truncated.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import StateType
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from sqlmodel import select

from tasks.alerts import Alert, AlertOutcome, send_once
from tasks.environment import LoadedEnvironment, load_environment
from tradeops.store.engine import session_for
from tradeops.store.models import FlowRunSummary


# A failed run alerts at its flow's severity (flows/registry.py), which the caller passes in.
REASON_MAX_CHARS = 1500
TASK_RUNS_SETTLE_SECONDS = 5.0  # task run states reach the API as events: wait this long for them
MIN_SECRET_FRAGMENT = 6  # parts of a secret URL (token path, password) redacted from this length

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)[^@\s]+@")
FINAL_TASK_STATES = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:  # a sweep, outside any flow run
        return logging.getLogger("tradeops.failure_alerts")


def failure_alert_key(flow_run_id: object) -> str:
    return f"flow-run-failed:{flow_run_id}"


# -- secrets --------------------------------------------------------------------------------------

def _secrets_in(value: Any, found: set[str]) -> None:
    """Every secret value (SecretStr, SecretBytes, pydantic Secret) inside a block, recursively."""
    if hasattr(value, "get_secret_value"):
        secret = value.get_secret_value()
        if isinstance(secret, bytes):
            secret = secret.decode(errors="replace")
        if isinstance(secret, (dict, list)):
            _plain_values(secret, found)
        elif secret not in (None, ""):
            found.add(str(secret))
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _secrets_in(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _secrets_in(item, found)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            _secrets_in(item, found)


def _plain_values(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _plain_values(item, found)
    elif isinstance(value, list):
        for item in value:
            _plain_values(item, found)
    elif value not in (None, ""):
        found.add(str(value))


def _fragments(secret: str) -> list[str]:
    """A URL's password and path/query, which can surface without the rest of the URL."""
    from urllib.parse import urlsplit

    if "://" not in secret:
        return []
    try:
        parts = urlsplit(secret)
        password = parts.password
    except ValueError:
        return []
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return [p for p in (password, path.rstrip("/"), parts.query) if p and len(p) >= MIN_SECRET_FRAGMENT]


def environment_secrets(env: LoadedEnvironment) -> list[str]:
    """Every secret value this environment's blocks hold, longest first (so a URL goes before
    its own token). A block that cannot be loaded is skipped."""
    block = env.block
    found: set[str] = {env.store_url}
    _secrets_in(block, found)
    loaders = [block.alert_channels, block.databases, block.offsite]
    for load in loaders:
        try:
            _secrets_in(load(), found)
        except Exception:  # noqa: BLE001 - a broken block is what may have failed the run
            continue
    named = [block.backup_encryption_key_block]
    try:
        offsite = block.offsite()
        named.append(getattr(offsite, "aws_credentials_block", None))
    except Exception:  # noqa: BLE001
        pass
    for name in filter(None, named):
        _secrets_in(_load_any_block(name), found)
    found |= {fragment for secret in list(found) for fragment in _fragments(secret)}
    return sorted(found, key=len, reverse=True)


def _load_any_block(name: str) -> Any:
    """A Secret or AwsCredentials block by document name, whatever its type; None when absent."""
    from prefect.blocks.system import Secret

    try:
        return Secret.load(name)
    except Exception:  # noqa: BLE001 - not a Secret: try AWS credentials
        pass
    try:
        from prefect_aws import AwsCredentials

        return AwsCredentials.load(name)
    except Exception:  # noqa: BLE001
        return None


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value, and any password in a URL, replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


# -- what failed ----------------------------------------------------------------------------------

def failed_task_runs(flow_run_id: object, crashed: bool = False,
                     settle_seconds: float = TASK_RUNS_SETTLE_SECONDS) -> list[Any]:
    """The task runs of the flow run that ended Failed or Crashed. Task run states reach the
    API as events, a moment after the fact: wait up to `settle_seconds` for none to be running.
    A crashed run's tasks may never settle: those still running are the ones it died in."""
    deadline = time.monotonic() + (0 if crashed else settle_seconds)
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            settled = all(r.state_type in FINAL_TASK_STATES for r in runs)
            if settled or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
    wanted = (StateType.FAILED, StateType.CRASHED) + ((StateType.RUNNING,) if crashed else ())
    failed = [r for r in runs if r.state_type in wanted]
    return sorted(failed, key=lambda r: r.start_time or r.expected_start_time or r.created)


def run_link(flow_run_id: object) -> str | None:
    """The run in the Prefect UI (PREFECT_UI_URL, else derived from PREFECT_API_URL)."""
    from prefect.settings import get_current_settings

    ui_url = get_current_settings().ui_url
    return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}" if ui_url else None


def environment_of(flow_run: Any, flow: Any = None) -> str:
    """The environment parameter of the run, else the flow's default for it, else `default`."""
    value = (flow_run.parameters or {}).get("environment")
    if not value and flow is not None:
        parameter = inspect.signature(flow.fn).parameters.get("environment")
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            value = parameter.default
    return str(value or "default")


@dataclass(frozen=True)
class FailedRun:
    """What a failure notification says about one run."""

    flow_name: str
    flow_run_id: str
    flow_run_name: str
    environment: str
    state_name: str  # Failed, Crashed, TimedOut...
    crashed: bool
    message: str
    failed_tasks: tuple[str, ...] = ()
    task_reasons: tuple[str, ...] = ()
    link: str | None = None
    severity: str = field(kw_only=True)  # the flow's (flows/registry.py)


def failure_alert(run: FailedRun, secrets: Iterable[str] = ()) -> Alert:
    """The alert for a failed run; the reason redacted first, then truncated (a cut secret must
    not survive in part)."""
    secrets = list(secrets)
    outcome = "crashed" if run.crashed else "failed"
    reason = redact(run.message or "no message", secrets)
    if len(reason) > REASON_MAX_CHARS:
        reason = reason[:REASON_MAX_CHARS - 1] + "…"
    lines = [f"flow: {run.flow_name}", f"flow run: {run.flow_run_name} ({run.flow_run_id})",
             f"environment: {run.environment}", f"state: {run.state_name}",
             f"failed task: {', '.join(run.failed_tasks) if run.failed_tasks else 'none recorded'}",
             f"reason: {reason}"]
    lines += [f"  {redact(line, secrets)[:300]}" for line in run.task_reasons]
    if run.link:
        lines.append(f"run: {run.link}")
    failed = f" in task {run.failed_tasks[0]}" if run.failed_tasks else ""
    return Alert(key=failure_alert_key(run.flow_run_id), severity=run.severity,
                 summary=f"{run.flow_name} {outcome}{failed}: flow run {run.flow_run_id}",
                 details="\n".join(lines), target=f"flow:{run.flow_name}",
                 name="TradeopsFlowRunCrashed" if run.crashed else "TradeopsFlowRunFailed")


def describe_failed_run(flow_name: str, flow_run: Any, state: Any, flow: Any = None,
                        *, severity: str) -> FailedRun:
    tasks = failed_task_runs(flow_run.id, crashed=state.is_crashed())
    return FailedRun(
        flow_name=flow_name, flow_run_id=str(flow_run.id), flow_run_name=flow_run.name or "",
        environment=environment_of(flow_run, flow), state_name=state.name or state.type.value.title(),
        crashed=state.is_crashed(), message=state.message or "",
        failed_tasks=tuple(t.name for t in tasks),
        task_reasons=tuple(f"{t.name}: {t.state.message}" for t in tasks if t.state and t.state.message),
        link=run_link(flow_run.id), severity=severity)


# -- delivery -------------------------------------------------------------------------------------

def notify_failure(flow_name: str, flow_run: Any, state: Any, flow: Any = None, *,
                   severity: str, alerts_per_condition: bool = False) -> AlertOutcome | None:
    """Tell the run's environment channels that it failed, at `severity` (its flow's), once per
    channel. Never raises: None when the notification could not be built (why is logged).
    `alerts_per_condition`: the flow alerts per condition itself (tasks/alert_groups.py), so a run
    that Failed after recording its summary has said what failed already; only a crash, or a
    failure before its report, alerts per run."""
    logger = _logger()
    secrets: list[str] = []
    try:
        run = describe_failed_run(flow_name, flow_run, state, flow, severity=severity)
        env = load_environment(run.environment)
        if alerts_per_condition and not run.crashed and summary_recorded(env.store_url, run):
            logger.info("flow run %s of %s failed with its report: its conditions were alerted by the run",
                        run.flow_run_id, flow_name)
            return None
        secrets = environment_secrets(env)
        alert = failure_alert(run, secrets)
        try:
            record_missing_summary(env.store_url, run, alert)
        except (SQLAlchemyError, OSError) as exc:  # the ops store is down: the alert matters more
            logger.error("failure of flow run %s not recorded in the ops store: %s", flow_run.id, type(exc).__name__)
        outcome = send_once(env.store_url, env.name, alert, env.block.alert_channels(), flow_run_id=run.flow_run_id)
    except Exception as exc:  # noqa: BLE001 - a notification must never fail the hook or the sweep
        logger.error("failure notification for flow run %s not sent: %s: %s", flow_run.id, type(exc).__name__,
                     redact(str(exc), secrets)[:300])
        return None
    delivered = [d.channel for d in outcome.deliveries if d.ok]
    logger.info("failure notification for flow run %s (%s): %s%s", run.flow_run_id, alert.severity, outcome.status,
                f", to {', '.join(delivered)}" if delivered else "")
    for failure in outcome.failures:
        logger.error("failure notification for flow run %s not delivered: %s", run.flow_run_id, failure.describe())
    return outcome


def notify_not_started(flow_name: str, environment: str, reason: str, *,
                       severity: str) -> AlertOutcome | None:
    """A run that could not even start (its ops store does not answer) alerts like a failed one,
    at its flow's severity; nothing records it, so a repeat is possible. Never raises."""
    secrets: list[str] = []
    try:
        env = load_environment(environment)
        secrets = environment_secrets(env)
        alert = Alert(key=f"flow-not-started:{environment}:{flow_name}", severity=severity,
                      summary=f"{flow_name} could not start in {environment}",
                      details=redact(f"environment: {environment}\nflow: {flow_name}\nreason: {reason}",
                                     secrets)[:REASON_MAX_CHARS],
                      target=f"flow:{flow_name}", name="TradeopsFlowRunNotStarted")
        return send_once(env.store_url, env.name, alert, env.block.alert_channels())
    except Exception as exc:  # noqa: BLE001 - the command's own message still says why
        _logger().error("alert that %s could not start not sent: %s", flow_name,
                        redact(f"{type(exc).__name__}: {exc}", secrets)[:300])
        return None


def summary_recorded(store_url: str, run: FailedRun) -> bool:
    try:
        with session_for(store_url) as session:
            return session.exec(select(FlowRunSummary.id).where(
                FlowRunSummary.flow_run_id == run.flow_run_id)).first() is not None
    except (SQLAlchemyError, OSError):  # the ops store is down: alert per run
        return False


def record_missing_summary(store_url: str, run: FailedRun, alert: Alert) -> None:
    """A run that crashed, or raised before its report, left no summary in the ops store: record
    the notification's text as its summary, so the evidence survives a Prefect server rebuild too."""
    with session_for(store_url) as session:
        if session.exec(select(FlowRunSummary.id).where(FlowRunSummary.flow_run_id == run.flow_run_id)).first():
            return
        session.add(FlowRunSummary(flow_run_id=run.flow_run_id, flow_name=run.flow_name, environment=run.environment,
                                   state=run.state_name[:16], message=alert.summary, summary_markdown=alert.details,
                                   result_json="{}"))
        session.commit()
