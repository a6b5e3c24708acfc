"""Benchmark: our WAL archive path vs pgBackRest's `archive-push` and the `cp` + `sha256sum` floor.

Real segments: a private cluster (initdb/pg_ctl, as `postgres` when run as root) writes rows and
switches segments until N are collected. Then, over the same N segments, one process run, medians
of R rounds (the methods interleaved in each round), each into an empty destination:

- tradeops: `tradeops-wal push SEGMENT --spool DIR` once per segment, as PostgreSQL runs
  archive_command (header and system identifier checked, SHA-256, written, fsynced, renamed),
  then the spool drained to a file:// offsite folder (re-hashed, copied, fsynced, checked, removed
  from the spool) in this process, as the wal-archive flow does;
- pgBackRest `archive-push` once per segment (uncompressed, into a posix repository), when its
  Debian package unpacks here (apt-get download + dpkg-deb -x, nothing installed), and again with
  its default gz compression;
- the floor: `sh -c 'cp SEGMENT DEST/ && sha256sum DEST/SEGMENT'` once per segment (no fsync).

    .venv/bin/python bench/wal_archive.py [--segments 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import host_cpu_counters, median_seconds, stolen_share  # noqa: E402
from blocks import OffsiteStorage  # noqa: E402
from tasks.backup.offsite import publish_offsite  # noqa: E402
from tasks.pitr.archive import drain_spool  # noqa: E402
from tasks.pitr.cluster import free_port, hand_to_owner, owner_argv, pg_binary  # noqa: E402

MIB = 1024 * 1024
TRADEOPS = str(Path(sys.executable).parent / "tradeops")
TRADEOPS_WAL = str(Path(sys.executable).parent / "tradeops-wal")  # the archive_command entry point


def collect_segments(root: Path, count: int) -> tuple[Path, Path, int, list[Path]]:
    """A private cluster archiving with plain `cp` into root/holding until `count` segments are there."""
    data, holding, sock, port = root / "data", root / "holding", root / "sock", free_port()
    holding.mkdir()
    sock.mkdir()
    hand_to_owner(root)
    subprocess.run(owner_argv([pg_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]), check=True,
                   capture_output=True)
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = ''\nunix_socket_directories = '{sock}'\narchive_mode = on\n"
                   f"archive_command = 'cp %p {holding}/%f'\nmax_wal_size = '1GB'\n")
    subprocess.run(owner_argv([pg_binary("pg_ctl"), "-D", str(data), "-w", "-l", str(root / "pg.log"), "start"]),
                   check=True, capture_output=True)
    psql = [pg_binary("psql"), "-h", str(sock), "-p", str(port), "-U", "postgres", "-d", "postgres", "-qAt", "-c"]
    subprocess.run(psql + ["CREATE TABLE filler (id bigint, payload text)"], check=True, capture_output=True)
    segments: list[Path] = []
    while len(segments) < count:
        subprocess.run(psql + ["INSERT INTO filler SELECT g, md5(g::text) || md5((g + 1)::text) "
                               "FROM generate_series(1, 150000) g; SELECT pg_switch_wal()"],
                       check=True, capture_output=True)
        time.sleep(0.2)
        segments = sorted(p for p in holding.iterdir() if len(p.name) == 24)
    return data, sock, port, segments[:count]


def stop(data: Path) -> None:
    subprocess.run(owner_argv([pg_binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                   capture_output=True)


def ours(segments: list[Path], data: Path, work: Path) -> tuple[float, float]:
    """(seconds of the per-segment archive_command runs, seconds of the drain)."""
    spool, offsite = work / "spool", work / "offsite"
    spool.mkdir()
    start = time.perf_counter()
    for segment in segments:
        subprocess.run([TRADEOPS_WAL, "push", str(segment), "--spool", str(spool), "--pgdata", str(data)],
                       check=True)
    pushed = time.perf_counter()
    result = drain_spool(OffsiteStorage(url=f"file://{offsite}"), "bench", "platform", spool, publish_offsite)
    assert len(result.uploaded) == len(segments) and not result.failures, result.failures
    return pushed - start, time.perf_counter() - pushed


def floor(segments: list[Path], work: Path) -> None:
    dest = work / "floor"
    dest.mkdir()
    for segment in segments:
        subprocess.run(["sh", "-c", f"cp {segment} {dest}/ && sha256sum {dest}/{segment.name} > /dev/null"],
                       check=True)


def pgbackrest_binary(scratch: Path) -> str | None:
    """pgbackrest on PATH, or unpacked from Debian's package (nothing installed); None if neither."""
    if found := shutil.which("pgbackrest"):
        return found
    if not shutil.which("apt-get"):
        return None
    done = subprocess.run(["apt-get", "download", "-q", "pgbackrest"], cwd=scratch, capture_output=True)
    debs = sorted(scratch.glob("pgbackrest_*.deb"))
    if done.returncode != 0 or not debs:
        return None
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(scratch / "root")], check=True)
    binary = scratch / "root/usr/bin/pgbackrest"
    return str(binary) if subprocess.run([str(binary), "version"], capture_output=True).returncode == 0 else None


def pgbackrest(binary: str, segments: list[Path], data: Path, work: Path, compress: str) -> None:
    repo, lock = work / "repo", work / "lock"
    options = [f"--repo1-path={repo}", f"--pg1-path={data}", "--stanza=bench", "--log-level-console=error", "--log-level-file=off", f"--lock-path={lock}",
               f"--compress-type={compress}", "--no-archive-async"]
    for segment in segments:
        subprocess.run([binary, *options, "archive-push", str(segment)], check=True, capture_output=True)


def pgbackrest_stanza(binary: str, data: Path, sock: Path, port: int, work: Path) -> None:
    repo = work / "repo"
    repo.mkdir()
    done = subprocess.run([binary, f"--repo1-path={repo}", f"--pg1-path={data}", f"--pg1-port={port}",
                           f"--pg1-socket-path={sock}", "--pg1-user=postgres", "--stanza=bench",
                           "--log-level-console=error", "--log-level-file=off", f"--lock-path={work / 'lock'}",
                           "stanza-create"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pgbackrest stanza-create failed: {done.stdout} {done.stderr}")


def start_seconds(argv: list[str], rounds: int = 10) -> float:
    return median_seconds(lambda: subprocess.run(argv, check=True, capture_output=True), rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-wal-"))
    try:
        data, sock, port, segments = collect_segments(root, args.segments)
        size = sum(s.stat().st_size for s in segments)
        print(f"{len(segments)} WAL segments, {size / MIB:.0f} MiB; {os.cpu_count()} cores; medians of {args.rounds}")
        print(f"start of one archive_command (--help): `tradeops-wal` "
              f"{1000 * start_seconds([TRADEOPS_WAL, 'push', '--help']):.0f} ms, `tradeops wal` "
              f"{1000 * start_seconds([TRADEOPS, 'wal', 'push', '--help']):.0f} ms, `true` "
              f"{1000 * start_seconds(['true']):.1f} ms")
        counters = host_cpu_counters()
        binary = pgbackrest_binary(root)
        if binary is None:
            print("pgBackRest: not installable here; the floor is the baseline")

        def fresh(name: str) -> Path:
            work = root / name
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            return work

        def timed(fn) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        def pushed_by_pgbackrest(compress: str) -> float:
            work = fresh(f"pgbr-{compress}")
            pgbackrest_stanza(binary, data, sock, port, work)
            return timed(lambda: pgbackrest(binary, segments, data, work, compress))

        # rounds interleave the methods, so a neighbour's load shifts all of them alike
        samples: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            push_s, drain_s = ours(segments, data, fresh("ours"))
            round_times = {"ours": push_s + drain_s, "push": push_s, "drain": drain_s,
                           "floor": timed(lambda: floor(segments, fresh("floor")))}
            if binary is not None:
                round_times["pgbr-none"] = pushed_by_pgbackrest("none")
                round_times["pgbr-gz"] = pushed_by_pgbackrest("gz")
            for key, value in round_times.items():
                samples.setdefault(key, []).append(value)
        median = {key: statistics.median(values) for key, values in samples.items()}
        t_ours, push_s, t_floor, t_pgbr = median["ours"], median["push"], median["floor"], median.get("pgbr-none")
        rows = [("tradeops (push per segment + drain offsite)", t_ours),
                ("  of which `tradeops-wal push` x N", push_s), ("  of which the drain", median["drain"]),
                ("cp + sha256sum per segment (floor)", t_floor)]
        if binary is not None:
            rows += [("pgBackRest archive-push per segment, compress-type=none", t_pgbr),
                     ("pgBackRest archive-push per segment, compress-type=gz", median["pgbr-gz"])]
        for label, seconds in rows:
            print(f"  {label:<58} {seconds:7.3f} s  {size / MIB / seconds:7.0f} MiB/s")
        pgbr = f", pgBackRest archive-push (uncompressed) {t_pgbr / push_s:.2f}x" if t_pgbr else ""
        print(f"ratio, the step PostgreSQL waits for (`tradeops-wal push` per segment): floor {t_floor / push_s:.2f}x"
              f"{pgbr}")
        pgbr = f", pgBackRest {t_pgbr / t_ours:.2f}x" if t_pgbr else ""
        print(f"ratio, end to end (push + drain offsite, two durable copies): floor {t_floor / t_ours:.2f}x{pgbr}; "
              f"{stolen_share(counters, host_cpu_counters())}")
        stop(data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
