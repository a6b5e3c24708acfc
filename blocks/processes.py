"""A platform process tradeops watches and may restart (runbook 004 "RegimeSystemDown": check the
service, `curl .../health`, restart it; runbook 001 "Remediation Matrix").

The process writes its pid to `pid_file`, answers `health_url`, and logs each request to
`request_log` (one line per request: ISO time, method, path, status, duration in ms), from which
the deep health check measures the error rate and p99 latency. `start_command` is its supervisor
command (argv, no shell: `systemctl restart platform-api` in production; the sandbox's own launcher
there). `circuit_breaker_file` is the flag the platform reads to shed load to its fallback when
latency runs away (runbook 001 "API Degradation: Circuit breaker")."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from pydantic import Field


class PlatformProcess(Block):
    _block_type_name = "Tradeops Platform Process"
    _block_type_slug = "tradeops-platform-process"
    _description = "A platform process: its pid file, health URL, request log and supervisor command."

    target: str
    pid_file: str
    health_url: str | None = Field(None, description="GET answers 200 when the process is healthy.")
    request_log: str | None = Field(None, description="One line per request: time method path status ms.")
    start_command: list[str] = Field(default_factory=list, description="Supervisor command that (re)starts it.")
    start_timeout_seconds: float = Field(15, gt=0)
    circuit_breaker_file: str | None = Field(None, description="Flag file the platform reads: open when present.")

    def pid(self) -> int | None:
        """The pid in the pid file, if it names a live process."""
        try:
            pid = int(Path(self.pid_file).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):  # a zombie is not alive
                    return None
        except (OSError, IndexError):
            return None
        return pid
