"""`tradeops sandbox create DIR`: a generated trading platform to operate on."""

from __future__ import annotations

import argparse
from pathlib import Path

from tradeops.cli.sandbox_setup import build_sandbox


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    commands = parser.add_subparsers(dest="sandbox_command", required=True, parser_class=parser_class)
    create = commands.add_parser("create", help="build a sandbox platform in DIR")
    create.add_argument("dir", type=Path)
    create.add_argument("--database-url", help="PostgreSQL URL for the platform database (else SQLite)")
    create.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    create.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace) -> int:
    platform, config_path = build_sandbox(args.dir, args.database_url, args.scale, args.seed)
    print(f"sandbox platform in {platform.directory} ({args.scale}); database {platform.database_url}")
    print(f"configuration: {config_path}")
    return 0
