"""Restores: fetch and check a set's artifacts, restore each target, prove it whole. One module
per concern (fetch, postgres, repositories, files, targets, drills); tasks wrap them here."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.restore.targets import restore_target

# The destination may carry a database URL with a password: no input is hashed into a cache key.
restore_target_task = task(restore_target, name="restore-target", cache_policy=NO_CACHE,
                           task_run_name="restore-{target}")
