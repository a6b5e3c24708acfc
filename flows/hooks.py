"""The hooks every tradeops flow carries: `@flow(name=..., **FAILURE_HOOKS)`.

`on_running` records the run's process (tasks.zombies, for the zombie sweep); `on_failure` and
`on_crashed` notify the environment's alert channels at the flow's severity (flows/registry.py,
tasks.failure_alerts). A hook never raises.
"""

from __future__ import annotations

import logging
from typing import Any

from flows.registry import SPECS, severity_for
from tasks.failure_alerts import notify_failure
from tasks.zombies import record_process


def notify_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure / on_crashed hook."""
    try:
        spec = SPECS.get(flow.name)
        notify_failure(flow.name, flow_run, state, flow, severity=severity_for(flow.name),
                       alerts_per_condition=spec.alerts_per_condition if spec else False)
    except Exception:  # noqa: BLE001 - belt and braces: notify_failure already catches
        logging.getLogger("tradeops.failure_alerts").exception("failure hook")


FAILURE_HOOKS: dict[str, list] = dict(on_running=[record_process], on_failure=[notify_on_failure],
                                      on_crashed=[notify_on_failure])
