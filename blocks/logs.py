"""A folder of platform log files, and how they are rotated and archived (runbook 001 "Log
Archival Procedures": 10 MB per file, gzip, 30 days locally, 1 year offsite)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field


class LogDirectory(Block):
    _block_type_name = "Tradeops Log Directory"
    _block_type_slug = "tradeops-log-directory"
    _description = "A directory of platform logs to check, rotate and archive."

    target: str
    path: str
    pattern: str = Field("*.log", description="Glob of the log files in path.")
    rotate_bytes: int = Field(10 * 1024 * 1024, gt=0, description="A live log file over this size is rotated.")
    local_retention_days: int = Field(30, ge=1, description="Archives are kept this long on this machine.")
    offsite_retention_days: int = Field(365, ge=1, description="Archives are kept this long offsite.")
    archive_dir: str | None = Field(None, description="Local archive folder (default: <data_dir>/log-archive).")
    reopen_command: list[str] = Field(
        default_factory=list,
        description="Run after rotating (argv, no shell), e.g. a signal that makes the writer reopen its file.")
    writer_grace_seconds: float = Field(
        10.0, ge=0, description="How long to wait for writers to let go of a rotated file before compressing it.")
