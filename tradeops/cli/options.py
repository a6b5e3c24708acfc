"""Options every environment command shares (experiment, strategy, ...), and the argument types
that bound numbers before anything runs (argparse turns their errors into exit 2)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable


def add_environment_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    parser.add_argument("--user", help="act as this user (needs access.impersonate; default: $TRADEOPS_USER, "
                                       "else the user your OS login maps to in [access] logins)")
    parser.add_argument("--json", action="store_true")
    return parser


def port_number(text: str) -> int:
    """A TCP port: 1-65535, or 0 for any free one."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: give 1-65535, or 0 for any free port")
    return port


def bounded(kind: type, low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """An argparse type: a finite `kind` (int or float) from `low` to `high`."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of bounds: {low:g} to {high:g}{unit}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse
