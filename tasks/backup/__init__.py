"""Backups: one module per concern (targets, manifest, catalog, offsite, verify); tasks wrap them here."""

import os
from pathlib import Path

from prefect import task
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.backup.encryption import load_key, seal_entries
from tasks.backup.offsite import not_retryable, publish_offsite, s3_reason
from tasks.backup.targets import archive_files, backup_database, backup_repository, export_audit
from tasks.backup.verify import verify_artifact
from tasks.crash_points import crash_point
from tasks.locks import Lock, target_lock
from tasks.retries import short_retry_logs
from tradeops.errors import ConfigError


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn signature
    """Retry offsite errors except those no retry fixes: a conflicting key, rejected credentials."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001
        return not not_retryable(exc)
    return False


# How many targets one backup run writes at once: its flow's task-runner threads (bench/fanout.py:
# on 2 cores, 50 repositories gain 1.5x from 1 to 2 threads, nothing more at 4). Several runs at
# once (daily, weekly, a drill) are bounded together by a Prefect tag concurrency limit on
# TARGET_TAG when ops create one: `prefect concurrency-limit create tradeops-backup-target 4`.
PARALLEL_ENV = "TRADEOPS_BACKUP_PARALLEL"
DEFAULT_PARALLEL = 4
TARGET_TAG = "tradeops-backup-target"


def backup_task_runner() -> ThreadPoolTaskRunner:
    """The thread pool a backup flow submits its targets to ($TRADEOPS_BACKUP_PARALLEL, default 4)."""
    raw = os.environ.get(PARALLEL_ENV, str(DEFAULT_PARALLEL))
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ConfigError(f"{PARALLEL_ENV}={raw!r}: give a whole number of parallel backups, 1 or more")
    return ThreadPoolTaskRunner(max_workers=workers)


# Each target task holds its target's lease while it writes (see tasks/locks.py). The
# database task receives the DSN, so no task here hashes its inputs into a cache key.
# An encryption key travels by Secret block name only; the task loads it.
def _sealed(entries, set_dir: Path, key_block: str | None):
    return seal_entries(entries, set_dir, load_key(key_block)) if key_block else entries


@task(name="backup-database", cache_policy=NO_CACHE, tags=[TARGET_TAG], task_run_name="backup-{target}")
def backup_database_task(target: str, url: str, set_dir: Path, dump_jobs: int | None = None,
                         lock: Lock | None = None, key_block: str | None = None):
    with target_lock(lock, target):
        entries = _sealed(backup_database(target, url, set_dir, dump_jobs), set_dir, key_block)
    crash_point("backup:target-written")
    return entries


@task(name="backup-repository", cache_policy=NO_CACHE, tags=[TARGET_TAG], task_run_name="backup-{target}")
def backup_repository_task(target: str, repo: Path, set_dir: Path, previous, lock: Lock | None = None,
                           key_block: str | None = None):
    with target_lock(lock, target):
        return _sealed(backup_repository(target, repo, set_dir, previous), set_dir, key_block)


@task(name="archive-files", cache_policy=NO_CACHE, tags=[TARGET_TAG], task_run_name="archive-{target}")
def archive_files_task(target: str, paths: list[str], set_dir: Path, last_day_only: bool = False,
                       pattern: str = "*", lock: Lock | None = None, key_block: str | None = None):
    with target_lock(lock, target):
        return _sealed(archive_files(target, paths, set_dir, last_day_only, pattern), set_dir, key_block)


_publish_offsite_task = task(publish_offsite, name="publish-offsite", cache_policy=NO_CACHE,
                             retry_condition_fn=_transient, retry_jitter_factor=0.5, task_run_name="offsite-{key}")
short_retry_logs("publish-offsite", s3_reason)  # one line per attempt; the traceback only at debug level


def publish_offsite_task_for(storage):
    """The upload task with the storage block's retry settings (ops tune them in the UI)."""
    return _publish_offsite_task.with_options(
        retries=storage.retries, retry_delay_seconds=exponential_backoff(backoff_factor=storage.retry_delay_seconds))

verify_artifact_task = task(verify_artifact, name="verify-artifact", cache_policy=NO_CACHE)
@task(name="export-audit-trail", cache_policy=NO_CACHE, tags=[TARGET_TAG])
def export_audit_task(target: str, store_url: str, set_dir: Path, key_block: str | None = None):
    return _sealed(export_audit(target, store_url, set_dir), set_dir, key_block)
