"""The sandbox platform's API process: a small stdlib HTTP server with a /health endpoint and a
request log, so the health check can measure error rate and p99 latency and remediation can
restart it.

    python -m tradeops.sandbox.api_server start --port P --pid-file F --request-log L

`start` is its supervisor command: it starts the server detached (its own session, so it outlives
whoever ran it), waits until /health answers and exits 0 (1 when it did not come up in time).
`serve` runs the server in the foreground; it ends when its pid file goes or names another
process (a removed sandbox takes its server with it). Routes: /health (200; its body says whether
the circuit-breaker flag is open), /api/v1/regime (200), /api/v1/fail (500, for tests),
/api/v1/slow?ms=N (answers after N ms). Each request is one log line:
`<ISO time> <method> <path> <status> <duration ms>`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_SLOW_MS = 5000
PID_FILE_CHECK_SECONDS = 2.0


def _handler(request_log: Path, breaker: Path | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            started = time.perf_counter()
            url = urlsplit(self.path)
            status, body = 200, {"status": "ok"}
            if url.path == "/health":
                body = {"status": "ok", "circuit_breaker": "open" if breaker and breaker.exists() else "closed"}
            elif url.path == "/api/v1/regime":
                body = {"regime": "bull", "confidence": 0.91}
            elif url.path == "/api/v1/fail":
                status, body = 500, {"error": "internal error"}
            elif url.path == "/api/v1/slow":
                ms = min(float(parse_qs(url.query).get("ms", ["100"])[0]), MAX_SLOW_MS)
                time.sleep(ms / 1000)
            else:
                status, body = 404, {"error": "not found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            elapsed_ms = (time.perf_counter() - started) * 1000
            line = f"{datetime.now(timezone.utc).isoformat()} GET {url.path} {status} {elapsed_ms:.2f}\n"
            with open(request_log, "a") as log:
                log.write(line)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the request log says it all
            pass

    return Handler


def serve(port: int, pid_file: Path, request_log: Path, breaker: Path | None) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(request_log, breaker))
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    request_log.parent.mkdir(parents=True, exist_ok=True)
    temp = pid_file.with_name(pid_file.name + ".tmp")
    temp.write_text(f"{os.getpid()}\n")
    os.replace(temp, pid_file)
    threading.Thread(target=_exit_without_pid_file, args=(server, pid_file), daemon=True).start()
    server.serve_forever()


def _exit_without_pid_file(server: ThreadingHTTPServer, pid_file: Path) -> None:
    """A sandbox removed (or its pid file taken by another start) takes its server with it."""
    while True:
        time.sleep(PID_FILE_CHECK_SECONDS)
        try:
            still_ours = pid_file.read_text().strip() == str(os.getpid())
        except OSError:
            still_ours = False
        if not still_ours:
            server.shutdown()
            return


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def start(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "tradeops.sandbox.api_server", "serve", "--port", str(args.port),
            "--pid-file", str(args.pid_file), "--request-log", str(args.request_log)]
    if args.circuit_breaker_file:
        argv += ["--circuit-breaker-file", str(args.circuit_breaker_file)]
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)
    deadline = time.monotonic() + args.timeout
    health = f"http://127.0.0.1:{args.port}/health"
    while time.monotonic() < deadline:
        if answers(health, 0.5):
            return 0
        time.sleep(0.05)
    print(f"api_server: {health} did not answer within {args.timeout:g} s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="api_server")
    parser.add_argument("mode", choices=["start", "serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--request-log", type=Path, required=True)
    parser.add_argument("--circuit-breaker-file", type=Path)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.port, args.pid_file, args.request_log, args.circuit_breaker_file)
        return 0
    return start(args)


if __name__ == "__main__":
    raise SystemExit(main())
