"""How a retried task logs: one short line per failed attempt, the traceback once, at debug level.

Prefect's task engine (3.8, `handle_retry`) logs each failed attempt that will be retried as
"Task run failed with exception: <repr> - Retry n/N will start in ..." and the last one, or the
only one of a task without retries, at ERROR with the whole traceback. For a task whose failures
are expected weather (an S3 endpoint that is down), `short_retry_logs` rewrites those records on
Prefect's own task-run logger, so the run log (and stderr) reads

    attempt 1 of 4 failed: PutObject: SlowDown: Please reduce your request rate.; next attempt in 2.1 s
    ...
    attempt 4 of 4 failed: PutObject: SlowDown: Please reduce your request rate.; no attempts left

and the traceback of the last attempt goes to one DEBUG record (seen with PREFECT_LOGGING_LEVEL=DEBUG).
The retrying itself stays Prefect's: retries, backoff, `retry_condition_fn`, AwaitingRetry states.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

TASK_RUN_LOGGER = "prefect.task_runs"
# The format string of Prefect 3.8's retry line (task_engine.py, handle_retry), whose 5 arguments
# are: failure type, the exception, the retry number, the task's retries, "<delay> second(s) from now".
PREFECT_RETRY_LINE = "Task run failed with %s: %r - Retry %s/%s will start %s"
PREFECT_FAILED_PREFIX = "Task run failed with "  # the last attempt's line (with exc_info)
REASON_CHARS = 300


def exception_reason(exc: BaseException) -> str:
    """`Type: message`, first line only, cut to a readable length."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


class ShortRetryLogs(logging.Filter):
    """Rewrites the task engine's failure records of the registered tasks (by task name)."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[str, Callable[[BaseException], str]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        reason = self.reasons.get(getattr(record, "task_name", None))
        if reason is None or getattr(record, "tradeops_traceback", False):
            return True
        if record.msg == PREFECT_RETRY_LINE and len(record.args or ()) == 5:
            _, failure, retry, retries, when = record.args
            record.msg = "attempt %d of %d failed: %s; next attempt %s"
            record.args = (retry, retries + 1, _reason(failure, reason), _delay(when))
        elif record.exc_info and isinstance(record.msg, str) and record.msg.startswith(PREFECT_FAILED_PREFIX):
            self._traceback_at_debug(record)
            attempt, attempts = _attempts()
            record.msg = "attempt %s of %s failed: %s; no attempts left"
            record.args = (attempt, attempts, _reason(record.exc_info[1], reason))
            record.exc_info, record.exc_text = None, None
        return True

    @staticmethod
    def _traceback_at_debug(record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if not logger.isEnabledFor(logging.DEBUG):
            return
        debug = logging.makeLogRecord({**record.__dict__, "levelno": logging.DEBUG, "levelname": "DEBUG",
                                       "msg": "traceback of the last attempt", "args": (), "exc_text": None,
                                       "tradeops_traceback": True})
        logger.handle(debug)


def _reason(failure: object, reason: Callable[[BaseException], str]) -> str:
    if isinstance(failure, BaseException):
        return reason(failure)
    return getattr(failure, "message", None) or str(failure)  # a returned Failed state


def _delay(when: object) -> str:
    match = re.match(r"([0-9.eE+-]+) second", str(when))
    return f"in {float(match.group(1)):.1f} s" if match else str(when).removesuffix(" from now")


def _attempts() -> tuple[object, object]:
    """(this attempt, all attempts) of the running task, from Prefect's task-run context."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    if context is None or context.task_run is None:
        return "?", "?"
    return context.task_run.run_count, context.task.retries + 1


_FILTER = ShortRetryLogs()


def short_retry_logs(task_name: str, reason: Callable[[BaseException], str] = exception_reason) -> None:
    """Log the failed attempts of the task named `task_name` as one line each (see above)."""
    logger = logging.getLogger(TASK_RUN_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    _FILTER.reasons[task_name] = reason
