"""Which log files are live, which are rotated, and what type of log each one is.

`trading.log` is live (the platform writes it); `trading-2026-10-01.log`, `trading.log.1` and
our own `trading-20261123T155100Z.log` are rotated: nobody should write them any more. The type
is the name without the date or rotation suffix (`trading`), and retrieval asks for it.
"""

from __future__ import annotations

import re
from datetime import datetime

_ROTATION_SUFFIX = re.compile(
    r"""(?:[-_.](?:\d{4}-\d{2}-\d{2}(?:T\d{6}Z)?   # -2026-10-01, -2026-10-01T155100Z
                |\d{8}(?:T\d{6}Z)?)                # .20261001, -20261123T155100Z
           |\.\d{1,3})$                             # .1 (logrotate's numbering; worker-1.log is live)
    """, re.X)
_LOG_SUFFIX = re.compile(r"\.log$")


def _stem(name: str) -> str:
    return _LOG_SUFFIX.sub("", name) if name.endswith(".log") else name


def log_type(name: str) -> str:
    """`trading-2026-10-01.log`, `trading.log.1`, `trading.log` -> `trading`."""
    stem = _stem(name)
    while _ROTATION_SUFFIX.search(stem):  # trading-20261123T155100Z.1 -> trading
        stem = _stem(_ROTATION_SUFFIX.sub("", stem))
    return stem


def is_rotated(name: str) -> bool:
    return bool(_ROTATION_SUFFIX.search(_stem(name)))


_OURS = re.compile(r"-\d{8}T\d{6}Z(?:\.\d+)?\.log$")


def rotated_by_us(name: str) -> bool:
    """Names `rotated_name` gives: nobody appends to them once every writer has let go."""
    return bool(_OURS.search(name))


def rotated_name(name: str, now: datetime) -> str:
    """The name a live file gets when we rotate it: `trading.log` -> `trading-20261123T155100Z.log`."""
    return f"{log_type(name)}-{now:%Y%m%dT%H%M%SZ}.log"


def archive_file_name(name: str) -> str:
    return f"{name}.gz"
