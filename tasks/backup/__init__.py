"""Backups: one module per concern (targets, manifest, catalog, offsite, verify); tasks wrap them here."""

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks.backup.offsite import OffsiteConflict, publish_offsite
from tasks.backup.targets import archive_files, backup_database, backup_repository, export_audit
from tasks.backup.verify import verify_artifact


def _transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn signature
    """Retry offsite errors except a conflict: a key holding other content will not change."""
    try:
        state.result()
    except OffsiteConflict:
        return False
    except Exception:  # noqa: BLE001
        return True
    return False


# Database tasks receive the DSN: never hash it into a cache key.
backup_database_task = task(backup_database, name="backup-database", cache_policy=NO_CACHE,
                            task_run_name="backup-{target}")
backup_repository_task = task(backup_repository, name="backup-repository", cache_policy=NO_CACHE,
                              task_run_name="backup-{target}")
archive_files_task = task(archive_files, name="archive-files", cache_policy=NO_CACHE,
                          task_run_name="archive-{target}")
publish_offsite_task = task(publish_offsite, name="publish-offsite", cache_policy=NO_CACHE,
                            retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2),
                            retry_condition_fn=_transient, task_run_name="offsite-{key}")
verify_artifact_task = task(verify_artifact, name="verify-artifact", cache_policy=NO_CACHE)
export_audit_task = task(export_audit, name="export-audit-trail", cache_policy=NO_CACHE)
