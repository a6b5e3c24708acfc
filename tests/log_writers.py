"""Log writers for the rotation tests, run as separate processes: `python log_writers.py MODE PATH STOP`.

Each writes numbered, timestamped lines as fast as it can until the STOP file appears, then
prints how many it wrote. Line i is a pure function of i, so a test knows every byte written.

- watched: Python's `logging.handlers.WatchedFileHandler` (reopens when the file is renamed);
- held: one descriptor for its whole life, reopened on SIGHUP (a daemon with a reopen signal);
- stubborn: one descriptor for its whole life, never reopened.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import signal
import sys
from datetime import datetime, timedelta, timezone

T0 = datetime(2026, 11, 23, tzinfo=timezone.utc)


def line(i: int) -> str:
    moment = T0 + timedelta(milliseconds=i)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z INFO trading line={i:08d} {'x' * 60}\n"


def expected(count: int) -> bytes:
    return "".join(line(i) for i in range(count)).encode()


def main(mode: str, path: str, stop: str) -> None:
    written = 0
    if mode == "watched":
        handler = logging.handlers.WatchedFileHandler(path)
        handler.terminator = ""
        handler.setFormatter(logging.Formatter("%(message)s"))
        log = logging.getLogger("writer")
        log.addHandler(handler)
        log.propagate = False
        log.setLevel(logging.INFO)
        write = log.info
    else:
        handle = [open(path, "a", buffering=1)]
        reopen = [False]
        if mode == "held":
            signal.signal(signal.SIGHUP, lambda *_: reopen.__setitem__(0, True))

        def write(text: str) -> None:
            if reopen[0]:
                handle[0].close()
                handle[0] = open(path, "a", buffering=1)
                reopen[0] = False
            handle[0].write(text)
    while True:
        if written % 500 == 0 and os.path.exists(stop):
            break
        write(line(written))
        written += 1
    print(written, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
