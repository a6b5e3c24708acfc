"""`tradeops db upgrade`: migrate the ops store to the newest schema."""

from __future__ import annotations

import argparse
import os

from sqlalchemy.exc import SQLAlchemyError

from tradeops.cli.config import store_url
from tradeops.errors import ConfigError, UsageError
from tradeops.store.engine import STORE_URL_ENV, resolve_store_url, upgrade


def add_arguments(parser: argparse.ArgumentParser, parser_class: type) -> None:
    commands = parser.add_subparsers(dest="db_command", required=True, parser_class=parser_class)
    upgrade_parser = commands.add_parser("upgrade", help="migrate the ops store to the newest schema")
    upgrade_parser.add_argument("--url", help="default: $TRADEOPS_DATABASE_URL or ./var/ops.db")


def run(args: argparse.Namespace) -> int:
    url = args.url or resolve_store_url()  # an explicit --url wins over $TRADEOPS_DATABASE_URL
    given = "--url" if args.url else STORE_URL_ENV if os.environ.get(STORE_URL_ENV) else "the default ops store"
    try:
        store_url(url)
    except ValueError as exc:
        raise UsageError(f"{given}: {exc}") from None
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(f"{given}: cannot open the ops store: {reason}") from None
    print("ops store at the newest schema")
    return 0
