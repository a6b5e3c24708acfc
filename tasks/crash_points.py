"""Named points at which the crash-safety tests kill a run with SIGKILL, as an operator's `kill -9`
or a lost machine would, to prove that a backup or restore killed there leaves nothing that looks
complete and that the next run recovers at once.

Set TRADEOPS_KILL_AT=<point> in a run's environment; every point is listed in CRASH_POINTS, and a
name not listed there is refused, so a test cannot silently aim at a point that does not exist.
Unset (always, in production), `crash_point` does nothing but read one environment variable.
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "TRADEOPS_KILL_AT"

CRASH_POINTS = {
    "backup:before-first-artifact": "the set's staging folder exists, no target has written yet",
    "backup:target-written": "a target's artifact is written in staging, the others may still be running",
    "backup:before-manifest": "every artifact is in staging, RECOVERY.md written, no manifest yet",
    "backup:before-catalog": "the set folder has its final name, the catalog still says pending",
    "backup:mid-upload": "the set is complete locally, its artifacts are offsite, its manifests not yet",
    "restore:before-swap": "every target is restored and checked in staging, none is in place",
}


def crash_point(name: str) -> None:
    """SIGKILL this process when the tests asked for a kill at `name`."""
    wanted = os.environ.get(KILL_AT_ENV)
    if not wanted:
        return
    if wanted not in CRASH_POINTS:
        raise ValueError(f"{KILL_AT_ENV}={wanted!r} is not a crash point; they are: {', '.join(CRASH_POINTS)}")
    if wanted == name:
        os.kill(os.getpid(), signal.SIGKILL)
