"""Concurrent audit writers: N processes appending to one ops store at once (tests and bench/audit.py).

Each writer is a fresh (spawned) process with its own engine, warmed up (store opened, Prefect's
runtime imported, the chain writer's connection open) before a barrier, so the timed span is
appends only, as in a long-lived writer.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class WriterRun:
    writers: int
    appends: int
    seconds: float  # first writer's start to last writer's end

    @property
    def per_second(self) -> float:
        return self.appends / self.seconds


def _writer(url: str, number: int, count: int, barrier, results, append: Callable | None) -> None:  # noqa: ANN001
    from tradeops.store import open_store
    from tradeops.store.records import append_audit, current_flow_run_id, warm_audit_writer

    append = append or append_audit
    try:
        open_store(url)
        current_flow_run_id()
        warm_audit_writer(url)
        barrier.wait()
        started = time.time()
        for n in range(count):
            append(url, "stress_append", f"writer-{number}", details={"writer": number, "n": n})
        results.put((started, time.time()))
    except BaseException as exc:  # the parent raises it, naming the writer
        barrier.abort()
        results.put(f"writer {number}: {exc!r}")


def run_writers(url: str, writers: int, appends_each: int, timeout: float = 600,
                append: Callable | None = None) -> WriterRun:
    """`writers` processes append `appends_each` entries each, all starting together, with
    `append_audit` or `append` (a module-level function taking append_audit's arguments)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(writers), context.Queue()
    processes = [context.Process(target=_writer, args=(url, n, appends_each, barrier, results, append))
                 for n in range(writers)]
    for process in processes:
        process.start()
    spans = [results.get(timeout=timeout) for _ in processes]
    failures = [span for span in spans if isinstance(span, str)]
    if failures:
        raise RuntimeError("audit writers failed: " + "; ".join(failures))
    for process in processes:
        process.join(timeout)
        if process.exitcode != 0:
            raise RuntimeError(f"audit writer process {process.pid} exited with {process.exitcode}")
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return WriterRun(writers, writers * appends_each, seconds)
