"""`tradeops apply --config FILE`: validate a configuration and save the blocks it changes."""

from __future__ import annotations

import argparse
from pathlib import Path

from tradeops.cli.common import apply_file


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--check", action="store_true", help="validate only, save nothing")
    parser.add_argument("--user", help="act as this user (needs access.impersonate; default: the user your OS "
                                        "login maps to in [access] logins)")


def run(args: argparse.Namespace) -> int:
    environment = apply_file(args.config, check_only=args.check, requested_user=args.user)
    print(f"{args.config}: valid (environment {environment!r})" if args.check
          else f"environment {environment!r} applied; run flows with --set environment={environment}")
    return 0
