"""Options every environment command shares (experiment, strategy, ...)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_environment_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    parser.add_argument("--user", help="act as this user (needs access.impersonate; default: $TRADEOPS_USER, "
                                       "else the user your OS login maps to in [access] logins)")
    parser.add_argument("--json", action="store_true")
    return parser
