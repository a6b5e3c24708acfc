"""Retried tasks log one line per attempt (n of N, the reason, the next delay), and the traceback
once, at the end, at debug level only (tasks/retries.py over Prefect's own retries)."""

from __future__ import annotations

import logging
import uuid

import pytest
from prefect import flow, task

from tasks.retries import TASK_RUN_LOGGER, short_retry_logs

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, task_name: str) -> list[tuple[str, str, bool]]:
        return [(r.levelname, r.getMessage(), r.exc_info is not None) for r in self.records
                if getattr(r, "task_name", None) == task_name]


def run_flaky(task_name: str, retries: int, level: int):
    """A task that always fails, with `retries`, under a flow; the task-run logger at `level`."""
    @task(name=task_name, retries=retries, retry_delay_seconds=0.01)
    def flaky() -> None:
        raise ConnectionError("endpoint refused the connection\nsecond line of detail")

    @flow
    def carrier() -> None:
        flaky()

    logger, handler = logging.getLogger(TASK_RUN_LOGGER), Captured()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        state = carrier(return_state=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    assert state.is_failed()
    return handler


def test_one_line_per_attempt_and_no_traceback_at_info():
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    short_retry_logs(name)
    lines = run_flaky(name, retries=2, level=logging.INFO).lines(name)
    failures = [(level, message) for level, message, _ in lines if "attempt" in message]
    assert failures == [
        ("INFO", "attempt 1 of 3 failed: ConnectionError: endpoint refused the connection; next attempt in 0.0 s"),
        ("INFO", "attempt 2 of 3 failed: ConnectionError: endpoint refused the connection; next attempt in 0.0 s"),
        ("ERROR", "attempt 3 of 3 failed: ConnectionError: endpoint refused the connection; no attempts left"),
    ]
    assert not any(has_traceback for _, _, has_traceback in lines)
    assert not any("Task run failed with" in message for _, message, _ in lines)


def test_the_traceback_appears_once_at_debug_level():
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    short_retry_logs(name)
    lines = run_flaky(name, retries=1, level=logging.DEBUG).lines(name)
    with_traceback = [(level, message) for level, message, has_traceback in lines if has_traceback]
    assert with_traceback == [("DEBUG", "traceback of the last attempt")]
    assert [m for _, m, _ in lines if "attempt" in m and "of 2" in m][-1].endswith("no attempts left")


def test_a_task_without_retries_logs_its_only_attempt_in_one_line():
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    short_retry_logs(name)
    lines = run_flaky(name, retries=0, level=logging.INFO).lines(name)
    assert ("ERROR", "attempt 1 of 1 failed: ConnectionError: endpoint refused the connection; no attempts left",
            False) in lines


def test_tasks_not_registered_keep_prefects_own_lines():
    name = f"other-{uuid.uuid4().hex[:6]}"
    lines = run_flaky(name, retries=1, level=logging.INFO).lines(name)
    assert any("Retry 1/1 will start" in message for _, message, _ in lines)
    assert any(has_traceback for _, _, has_traceback in lines)  # Prefect's default, untouched
