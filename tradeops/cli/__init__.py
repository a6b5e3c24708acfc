"""The `tradeops` command, on top of everything else (flows, tasks, blocks, deployments, the
foundation). `main.py` parses and dispatches through its command table; `common.py` holds what
command modules share; `commands/` has one module per command group, each with
`add_arguments(parser, parser_class)` and `run(args) -> int` (docs/development.md "Adding a command").
The config schema and its apply live here too (`config.py`, `apply.py`, `environment_snapshot.py`).
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    """`from tradeops.cli import main` in a fresh process: what a `tradeops` console script
    installed before tradeops.cli became a package runs (pyproject now names
    tradeops.cli.main:main; `make install` rewrites the script). Code imports
    `tradeops.cli.main` itself."""
    if name == "main":
        main = importlib.import_module("tradeops.cli.main").main
        globals()["main"] = main  # the function, not the submodule the import just bound
        return main
    raise AttributeError(f"module 'tradeops.cli' has no attribute {name!r}")
