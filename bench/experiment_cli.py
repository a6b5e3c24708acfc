"""Benchmark: how long `tradeops experiment show|list|create` take on the small sandbox, on the
embedded default (Prefect's ephemeral server in a private PREFECT_HOME, a SQLite ops store).

Ours: the commands read the environment snapshot `tradeops apply` writes
(tradeops/cli/environment_snapshot.py): no Prefect import, no server start, no block loads.
Baseline: the same commands loading the environment's blocks, as every lifecycle command did
before issue 17 (TRADEOPS_NO_ENVIRONMENT_SNAPSHOT=1): Prefect imported, the ephemeral server
started, the blocks loaded. Every round is a fresh process, as from a shell. The script also
prints where the baseline's time goes (Prefect's import alone, and the rest).

    .venv/bin/python bench/experiment_cli.py [--rounds 7] [--baseline-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import host_cpu_counters, stolen_share

from tradeops.cli.sandbox_setup import build_sandbox

ROOT = Path(__file__).resolve().parent.parent
TRADEOPS = Path(sys.executable).with_name("tradeops")


CPU: list[float] = []  # CPU seconds (user + system) of each command's process tree, in run order


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(env: dict, cwd: Path, *argv: str) -> float:
    """Wall seconds of one command; its CPU seconds go to CPU (what the wall would be on an idle host,
    less waits: the machine this runs on is shared, so both are printed)."""
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([str(TRADEOPS), *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    CPU.append(_children_cpu() - cpu)
    if done.returncode != 0:
        raise SystemExit(f"tradeops {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return elapsed


def _timed(env: dict, cwd: Path, rounds: int, *argv_rounds) -> tuple[float, float]:
    """Median wall and median CPU seconds over `rounds` processes (argv_rounds: one argv per round)."""
    walls = [_run(env, cwd, *argv) for argv in argv_rounds[:rounds]]
    return statistics.median(walls), statistics.median(CPU[-rounds:])


def _python(env: dict, cwd: Path, code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline-rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tradeops-bench-cli-") as tmp:
        tmp = Path(tmp)
        _, config = build_sandbox(tmp / "sandbox", None, "small", 7)
        work = tmp / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRADEOPS_"))}
        env.update(PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", TRADEOPS_ENVIRONMENT="sandbox",
                   PYTHONPATH=str(ROOT))
        apply_s = _run(env, work, "apply", "--config", str(config))
        _run(env, work, "experiment", "create", "--strategy", "momentum_alpha", "--param", "x=1", "--capital", "1%",
             "--name", "bench", "--user", "admin")
        slow = {**env, "TRADEOPS_NO_ENVIRONMENT_SNAPSHOT": "1"}
        before = host_cpu_counters()
        rows = []
        create = ("experiment", "create", "--strategy", "momentum_alpha", "--param", "x=1", "--capital", "0.1%",
                  "--user", "admin")
        for command, argv in (("show", ("experiment", "show", "bench", "--user", "carol")),
                              ("list", ("experiment", "list", "--user", "carol")), ("create", create)):
            def rounds(tag: str, n: int):
                return [(*argv, "--name", f"{tag}-{i}") if command == "create" else argv for i in range(n)]

            ours = _timed(env, work, args.rounds, *rounds("fast", args.rounds))
            baseline = _timed(slow, work, args.baseline_rounds, *rounds("slow", args.baseline_rounds))
            rows.append((command, ours, baseline))
        python_s = statistics.median(_python(env, work, "pass") for _ in range(args.rounds))
        prefect_s = statistics.median(_python(env, work, "import prefect") for _ in range(args.baseline_rounds))
        after = host_cpu_counters()

    print(f"`tradeops apply` of the sandbox (blocks and snapshot): {apply_s:.2f} s")
    for command, (ours, ours_cpu), (baseline, baseline_cpu) in rows:
        print(f"tradeops experiment {command} (median of {args.rounds} / {args.baseline_rounds} processes): "
              f"snapshot {ours:.3f} s wall, {ours_cpu:.3f} s CPU; blocks (before) {baseline:.3f} s wall, "
              f"{baseline_cpu:.3f} s CPU; ratio {baseline / ours:.1f}x wall; target under 1 s "
              f"{'met' if ours < 1.0 else 'MISSED'}")
    print(f"where the blocks path's time goes: a bare interpreter {python_s:.3f} s, `import prefect` "
          f"{prefect_s:.3f} s; the rest is the ephemeral server's start and the block loads")
    print(stolen_share(before, after))
    return 0 if all(ours < 1.0 for _, (ours, _), _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
