"""A folder of platform log files."""

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
