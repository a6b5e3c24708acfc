"""`tradeops metrics serve|show`: an environment's Prometheus metrics, read from its ops store.

`serve` answers scrapes on /metrics until stopped (Ctrl-C or SIGTERM); `show` prints one scrape
(the text exposition format), for a look or a node_exporter textfile. Exit 2 for usage errors
(a port that is taken), as every tradeops command.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest, start_http_server

from blocks import TradeopsEnvironment
from tasks.metrics import registry_for
from tradeops.cli.common import environment_for
from tradeops.cli.options import port_number
from tradeops.errors import UsageError


DEFAULT_PORT = 8000  # runbook 000's scrape config: targets ['localhost:8000'], metrics_path /metrics


def add_arguments(metrics: argparse.ArgumentParser, parser_class: type) -> None:
    commands = metrics.add_subparsers(dest="metrics_command", required=True, parser_class=parser_class)
    serve = commands.add_parser("serve", help="answer Prometheus scrapes on http://ADDRESS:PORT/metrics")
    serve.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free port")
    serve.add_argument("--address", default="0.0.0.0", help="interface to listen on (default: all)")
    serve.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")
    show = commands.add_parser("show", help="print the metrics once, in Prometheus' text format")
    show.add_argument("--config", type=Path, help="tradeops.toml (default: $TRADEOPS_CONFIG or ./tradeops.toml)")


def run(args: argparse.Namespace) -> int:
    environment = environment_for(args.config, quiet=True)
    registry = registry_for(environment, TradeopsEnvironment.load(environment).store_url())
    if args.metrics_command == "show":
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    return serve(registry, environment, args.address, args.port)


def serve(registry: Any, environment: str, address: str, port: int) -> int:
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise UsageError(f"--port {port}: cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    signal.signal(signal.SIGTERM, _stop)
    print(f"tradeops metrics: environment {environment!r} on http://{address}:{server.server_port}/metrics",
          flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


def _stop(signum: int, frame: Any) -> None:
    """SIGTERM (a service manager stopping us) ends `serve` as Ctrl-C does."""
    raise KeyboardInterrupt
