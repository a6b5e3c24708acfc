"""Morning health checks: one module per concern, each a plain function; tasks wrap them here."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.health.backups import check_backup_age
from tasks.health.certificates import check_certificates
from tasks.health.database import check_database
from tasks.health.logs import check_newest_log
from tasks.health.result import CheckResult
from tasks.health.system import check_disk_free, check_memory
from tasks.health.thresholds import HEALTH_THRESHOLDS, thresholds_with
from tasks.retries import short_retry_logs

# The database check receives the DSN: never hash it into a cache key.
check_database_task = task(check_database, name="check-database", retries=1, retry_delay_seconds=2,
                           cache_policy=NO_CACHE)
short_retry_logs("check-database")  # one line per failed attempt; the traceback only at debug level
check_disk_free_task = task(check_disk_free, name="check-disk-free")
check_memory_task = task(check_memory, name="check-memory")
check_certificates_task = task(check_certificates, name="check-certificates")
check_newest_log_task = task(check_newest_log, name="check-newest-log")
check_backup_age_task = task(check_backup_age, name="check-backup-age")

__all__ = [
    "CheckResult", "HEALTH_THRESHOLDS", "thresholds_with",
    "check_backup_age", "check_certificates", "check_database", "check_disk_free", "check_memory",
    "check_newest_log", "check_backup_age_task", "check_certificates_task", "check_database_task",
    "check_disk_free_task", "check_memory_task", "check_newest_log_task",
]
