"""Options every environment command shares (experiment, strategy, ...)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_environment_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    parser.add_argument("--user", help="acting user (default: $TRADEOPS_USER, else the environment's "
                                       "[access] user, else the login name)")
    parser.add_argument("--json", action="store_true")
    return parser
