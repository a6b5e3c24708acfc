"""Platform configuration files and folders to back up."""

from __future__ import annotations

from prefect.blocks.core import Block


class ConfigFileSet(Block):
    _block_type_name = "Tradeops Config File Set"
    _block_type_slug = "tradeops-config-file-set"
    _description = "Configuration files or folders of the trading platform."

    target: str
    paths: list[str]
