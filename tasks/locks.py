"""One writer per target: Prefect global concurrency limits of one slot, named per target.

Two runs that would write the same target (a scheduled and an ad-hoc backup, say) never do so at
once: the second waits for the slot, and gives up with a clear error after
TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS (default one hour). A run that was killed holds its slots
until their lease lapses (LEASE_SECONDS), so the next run waits at most that long.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency


# A holder renews its lease while it runs; a killed holder's slot frees when the lease lapses.
LEASE_SECONDS = 60  # the server accepts no shorter lease


class TargetBusy(Exception):
    """Another run holds the target's slot."""


def lock_name(purpose: str, environment: str, target: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"tradeops-{purpose}-{environment}-{target}".lower()).strip("-")


def ensure_locks(names: list[str]) -> None:
    """Create the one-slot limits that do not exist yet (idempotent)."""
    with get_client(sync_client=True) as client:
        for name in names:
            client.upsert_global_concurrency_limit_by_name(name, 1)


@contextmanager
def target_lock(name: str | None, target: str = "") -> Iterator[None]:
    if name is None:
        yield
        return
    timeout = float(os.environ.get("TRADEOPS_TARGET_LOCK_TIMEOUT_SECONDS", 3600))
    try:
        with concurrency(name, occupy=1, strict=True, timeout_seconds=timeout, lease_duration=LEASE_SECONDS):
            yield
    except TimeoutError:
        raise TargetBusy(f"another run has been writing {target or name} for over {timeout:g} s "
                         f"(concurrency limit {name})") from None
