"""`restore_command`: hand PostgreSQL the WAL file it asks for from the restore's queue folder.

A tradeops restore fetches WAL from the offsite archive into the queue (tasks/pitr/fetcher.py):
it checks every file's SHA-256 against its archive name before giving it its final name there.
This side never sees the offsite store or its credentials. It asks by creating
`requests/<file>` and waits for one answer:

| answer in the queue | exit | PostgreSQL |
|---|---|---|
| `<file>` | 0, the file copied to `%p` | replays it |
| `<file>.missing` | 1 | not in the archive: the end of the WAL, or a timeline that does not exist |
| `<file>.refused` (its text says why) | 255 | stops the recovery: never replays a file that failed its checksum |
| nothing within the timeout | 255 | stops the recovery rather than end it early and promote |

PostgreSQL treats an exit status above 125 as fatal for recovery, and 1 as "not there".
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

NOT_IN_ARCHIVE = 1
FATAL = 255
POLL_SECONDS = 0.02
REQUESTS = "requests"


def request(queue: Path, name: str) -> None:
    path = queue / REQUESTS / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)


def get(name: str, destination: Path, queue: Path, timeout: float) -> int:
    """Exit status for restore_command (see the table above)."""
    if "/" in name or name.startswith("."):
        print(f"tradeops wal get: {name!r} is not a WAL file name", file=sys.stderr)
        return FATAL
    queue = Path(queue)
    ready, missing, refused = queue / name, queue / f"{name}.missing", queue / f"{name}.refused"
    try:
        missing.unlink(missing_ok=True)  # an answer to an earlier request: the archive may have grown since
        request(queue, name)
    except OSError as exc:
        print(f"tradeops wal get: cannot ask the restore for {name} in {queue}: {exc.strerror}", file=sys.stderr)
        return FATAL
    deadline = time.monotonic() + timeout
    while True:
        if ready.exists():
            try:
                shutil.copyfile(ready, destination)
                return 0
            except FileNotFoundError:  # dropped as PostgreSQL had moved past it: ask again
                request(queue, name)
        if missing.exists():
            return NOT_IN_ARCHIVE
        if refused.exists():
            print(f"tradeops wal get: {name} refused: {refused.read_text().strip()}", file=sys.stderr)
            return FATAL
        if time.monotonic() > deadline:
            print(f"tradeops wal get: no answer for {name} within {timeout:.0f} s: is the tradeops restore that "
                  f"fills {queue} still running?", file=sys.stderr)
            return FATAL
        time.sleep(POLL_SECONDS)
