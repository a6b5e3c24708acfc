"""dr-drill: restore the newest verified backup set from offsite into scratch resources, prove it
whole, and measure RTO and RPO (runbooks 000 "Recovery Testing", 003 "Disaster Recovery
Testing", 004 "Recovery Procedures"). Quarterly, and on demand.

Checklist:
1. The newest verified set of the environment (catalog); its manifest from offsite only (a
   missing or corrupt manifest or copy, or the two disagreeing, fails the drill; the intact one
   is still used to restore).
2. Every target, concurrently: fetch its artifacts from offsite (SHA-256 checked), decrypt,
   restore into a scratch database `tradeops_drill_<environment>_<run>_<target>` or a scratch
   folder.
3. Validate: PostgreSQL row counts and content checksums per table, indexes, constraints and
   materialized views, the probe query; git refs at their recorded commits and `git fsck`;
   every archived file's SHA-256.
4. Databases with WAL archiving (`wal_archive`): also restored to a point in time (10 minutes
   before the drill, or `pitr_target_time`) from their base backup and WAL archive into a
   scratch cluster, and the recovery point proven: every row dated up to a minute before that
   time is there, unchanged (an idle platform with no later commit: restored to the latest).
5. Drop every scratch resource, pass or fail (leftovers of a killed drill go at the next start).
Report: RTO per target and in total, RPO, pass/fail with the reason, and the trend of past drills.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import psycopg2
from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from tasks.backup.catalog import chosen_set
from tasks.backup.kinds import kind_of
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import lock_for, target_lock
from tasks.pitr.prove import restore_and_prove
from tasks.restore.drills import record_drill
from tasks.restore.fetch import RestoreError, fetch_offsite, offsite_manifest
from tasks.restore.report import drill_failure, publish_drill_report
from tasks.restore.postgres import create_database, database_url, databases_named, drop_database
from tasks.databases import is_sqlite
from tasks.restore import restore_target_task
from tasks.restore.restorers import Destination
from tasks.access import current_actor
from tradeops.store.records import append_audit, current_flow_run_id
from tradeops.clock import utcnow

SCRATCH_DB_PREFIX = "tradeops_drill_"

@flow(name="dr-drill", **FAILURE_HOOKS)
def dr_drill(environment: str = "default", pitr_target_time: datetime | None = None) -> State:
    """Restore the newest verified set from offsite into scratch resources and prove it whole;
    databases with WAL archiving are also restored to a point in time (`pitr_target_time`,
    default 10 minutes before the drill) and their recovery point proven."""
    env = load_environment(environment)
    with target_lock(lock_for("drill", env.name, "run", env.store_url), f"the DR drill of {env.name}"):
        return run_drill(env, pitr_target_time)


def run_drill(env: LoadedEnvironment, pitr_target_time: datetime | None = None) -> State:
    logger = get_run_logger()
    started = utcnow()
    storage = env.block.offsite()
    databases = {f"db:{db.target}": db for db in env.block.databases()}  # each a block load: once
    servers = [db.url.get_secret_value() for db in databases.values() if not is_sqlite(db.url.get_secret_value())]
    drills_dir = env.block.output_dir("drills", env.name)
    swept = sweep_leftovers(drills_dir, servers, scratch_prefix(env.name))
    if swept:
        logger.warning("removed leftovers of an earlier drill: %s", ", ".join(swept))
    backup_set = chosen_set(env.store_url, env.name)
    if storage is None or backup_set is None:
        reason = ("the drill restores from offsite only: configure [offsite]" if storage is None
                  else "no verified backup set: run daily-backup, then verify-backups")
        return report_drill(env, started, None, None, [], reason)

    tag = (current_flow_run_id() or uuid.uuid4().hex)[:8]
    scratch = drills_dir / f".scratch-{tag}"
    scratch_dbs: list[tuple[str, str]] = []
    scratch.mkdir(parents=True, mode=0o700)  # decrypted data: owner only
    clock = time.perf_counter()
    outcomes: list[dict] = []
    failure = None
    try:
        manifest, manifest_problems = offsite_manifest(storage, env.name, backup_set.set_id)
        failure = "; ".join(manifest_problems) or None  # a bad manifest or copy is reported, never repaired
        rpo = (started - datetime.fromisoformat(manifest.created_at)).total_seconds()
        futures = {}
        for target, entries in manifest.by_target().items():
            destination = Destination(directory=scratch / "restored")
            db = databases.get(target)
            if any(kind_of(e).restores_into_database for e in entries):
                if db is None or is_sqlite(db.url.get_secret_value()):
                    outcomes.append({"target": target, "passed": False, "rto_seconds": None,
                                     "problems": [f"{target}: no PostgreSQL server configured to restore into"]})
                    continue
                url = db.url.get_secret_value()
                name = scratch_database_name(env.name, tag, target)
                create_database(url, name)
                scratch_dbs.append((url, name))
                destination = Destination(scratch / "restored", database_url(url, name), db.probe_query)
            futures[target] = restore_target_task.submit(
                target, entries, partial(fetch_offsite, storage, into=scratch / "fetched"), destination,
                env.block.backup_encryption_key_block, scratch / "plain")
        for target, future in futures.items():  # every one, before anything is cleaned up
            try:
                outcomes.append(future.result().as_dict())
            except Exception as exc:  # noqa: BLE001 - a crashed task: its target failed
                outcomes.append({"target": target, "passed": False, "rto_seconds": None,
                                 "problems": [f"{target}: {type(exc).__name__}: {exc}"]})
        rto = time.perf_counter() - clock
        for db in databases.values():
            if db.wal_archive:
                folder = env.block.output_dir("pitr", "drills") / f"{tag}-{_slug(db.target)}"  # the cluster owner's
                outcomes.append(drill_point_in_time(storage, env.name, db, pitr_target_time or started - PITR_LAG,
                                                    folder))
    except RestoreError as exc:
        failure, rto, rpo = str(exc), None, None
    except Exception as exc:  # noqa: BLE001 - S3 down, database server down: the reason, then cleanup
        failure, rto, rpo = f"{type(exc).__name__}: {exc}", None, None
    finally:
        left = clean_up(scratch, scratch_dbs)
    if left:
        failure = "; ".join(filter(None, [failure, "scratch resources left behind: " + ", ".join(left)]))
    return report_drill(env, started, backup_set.set_id, (rto, rpo), outcomes, failure)


# The drill's point-in-time restore aims this far before its start: by then the WAL of that moment
# has been drained offsite (wal-archive every 5 minutes, plus archive_timeout) and later commits exist.
PITR_LAG = timedelta(minutes=10)
PITR_RPO_WINDOW = timedelta(minutes=1)  # runbook 004 and issue 20: rows written up to a minute before are there


def drill_point_in_time(storage, environment: str, db, target_time: datetime, folder: Path) -> dict:
    """Restore `db` to `target_time` from its base backup and WAL archive into a scratch cluster,
    prove the RPO (every row dated up to a minute before the target is there, unchanged), stop
    and remove the cluster. An archive with no commit after the target (an idle platform) cannot
    reach a time: then it restores to the latest point and records where it got to."""
    clock = time.perf_counter()
    result, rpo = restore_and_prove(storage, environment, db, target_time, folder, rpo_window=PITR_RPO_WINDOW)
    fell_back = None
    if not result.passed and any("no transaction committed after the target time" in p for p in result.problems):
        fell_back = "; ".join(result.problems)
        result, rpo = restore_and_prove(storage, environment, db, None, folder)
    target = f"pitr:{db.target}"
    problems = [f"{target}: {p}" for p in result.problems]
    return {"target": target, "passed": not problems, "problems": problems,
            "rto_seconds": round(time.perf_counter() - clock, 3), "bytes": result.wal_bytes,
            "target_time": result.target_time, "recovered_to": result.recovered_to,
            "rpo_seconds": rpo.rpo_seconds if rpo is not None else None,
            "rpo_proof": rpo.describe() if rpo is not None else None, "fell_back_to_latest": fell_back}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def scratch_prefix(environment: str) -> str:
    """Readable, and unique per environment (a hash), so one environment's sweep never matches
    another's scratch databases (`prod` vs `prod_eu`)."""
    digest = hashlib.sha256(environment.encode()).hexdigest()[:6]
    return f"{SCRATCH_DB_PREFIX}{_slug(environment)[:12]}_{digest}_"


def scratch_database_name(environment: str, tag: str, target: str) -> str:
    """`tradeops_drill_<environment>_<run>_<target>`: a plain identifier within 63 bytes."""
    return f"{scratch_prefix(environment)}{tag}_{_slug(target.split(':', 1)[-1])}"[:63]


def clean_up(scratch: Path, scratch_dbs: list[tuple[str, str]]) -> list[str]:
    """Drop every scratch resource; returns any that could not be removed."""
    left = []
    for url, name in scratch_dbs:
        try:
            drop_database(url, name)
        except Exception as exc:  # noqa: BLE001 - keep going, report it
            left.append(f"database {name} ({exc})")
    shutil.rmtree(scratch, ignore_errors=True)
    if scratch.exists():
        left.append(str(scratch))
    return left


def sweep_leftovers(drills_dir: Path, servers: list[str], prefix: str) -> list[str]:
    """Scratch folders and databases of drills that were killed before they could clean up
    (the drill lock guarantees none of them belongs to a running drill)."""
    swept = [str(p) for p in drills_dir.glob(".scratch-*")]
    for path in swept:
        shutil.rmtree(path, ignore_errors=True)
    for url in servers:
        try:
            for name in databases_named(url, prefix):
                drop_database(url, name)
                swept.append(f"database {name}")
        except psycopg2.Error as exc:  # the drill itself will say the server is unreachable
            get_run_logger().warning("could not sweep scratch databases: %s", str(exc).strip().splitlines()[0])
    return swept


def report_drill(env: LoadedEnvironment, started: datetime, set_id: str | None,
                 times: tuple[float | None, float | None] | None, outcomes: list[dict], failure: str | None) -> State:
    """Record the drill (the ops store's drill history, the audit trail), then publish its report."""
    rto, rpo = times or (None, None)
    failure = drill_failure(set_id, outcomes, failure)
    passed = failure is None
    record_drill(env.store_url, env.name, set_id, started, utcnow(), rto, rpo, passed, outcomes)
    append_audit(env.store_url, "dr_drill", current_actor(env).user, success=passed,
                 details={"environment": env.name, "set_id": set_id, "rto_seconds": rto, "rpo_seconds": rpo})
    return publish_drill_report(env, set_id, rto, rpo, outcomes, failure)
