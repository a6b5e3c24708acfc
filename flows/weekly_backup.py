"""weekly-backup: the full weekly set (runbooks 000 weekly git backup, 002 "Weekly Full Backup").

The same steps as daily-backup, but nothing is reused: every repository is packed again, all
logs are archived (not only the last day's), and the ops store's audit trail is exported with
its hash chain. Weekly sets are kept 12 weeks; database dumps and the audit export get S3
Object Lock where the bucket has it.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from flows.daily_backup import run_backup_set
from flows.hooks import FAILURE_HOOKS
from tasks.backup.report import publish_retention_dry_run
from tasks.backup import backup_task_runner
from tasks.environment import load_environment


@flow(name="weekly-backup", task_runner=backup_task_runner(), **FAILURE_HOOKS)
def weekly_backup(environment: str = "default", dry_run: bool = False) -> State:
    """A complete backup set of every target of `environment`, regardless of incremental reuse."""
    env = load_environment(environment)
    return publish_retention_dry_run(env, "weekly") if dry_run else run_backup_set(env, kind="weekly")
