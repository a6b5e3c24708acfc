"""Restores: fetch and check a set's artifacts, restore each target, prove it whole, then put it in
place. One module per concern (fetch, plan, postgres, repositories, files, targets, publish,
drills); tasks wrap them here."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.restore.targets import fetch_target, restore_fetched, restore_target

# The destination may carry a database URL with a password: no input is hashed into a cache key.
restore_target_task = task(restore_target, name="restore-target", cache_policy=NO_CACHE,
                           task_run_name="restore-{target}")
fetch_target_task = task(fetch_target, name="fetch-target", cache_policy=NO_CACHE, task_run_name="fetch-{target}")
restore_fetched_task = task(restore_fetched, name="restore-target", cache_policy=NO_CACHE,
                            task_run_name="restore-{fetched.target}")
