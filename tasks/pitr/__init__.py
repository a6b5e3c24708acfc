"""Point-in-time recovery for PostgreSQL: WAL spool to offsite (archive), gap detection (gaps),
base backups (basebackup) and their expiry (expire), restore to a time into a scratch cluster (restore, fetcher, cluster),
the RPO proof (rpo). The archive_command side is tradeops/wal/. Tasks wrap the plain functions
here; the DSNs and the storage block are inputs, so nothing is hashed into a cache key."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.pitr.archive import drain_spool
from tasks.pitr.basebackup import take_base_backup
from tasks.pitr.expire import expire_pitr
from tasks.pitr.restore import restore_to_time
from tasks.pitr.rpo import prove_rpo

drain_spool_task = task(drain_spool, name="wal-drain-spool", cache_policy=NO_CACHE, task_run_name="wal-drain-{target}")
take_base_backup_task = task(take_base_backup, name="pg-basebackup", cache_policy=NO_CACHE,
                             task_run_name="pg-basebackup-{target}")
expire_pitr_task = task(expire_pitr, name="pitr-expire", cache_policy=NO_CACHE, task_run_name="pitr-expire-{target}")
restore_to_time_task = task(restore_to_time, name="pitr-restore-cluster", cache_policy=NO_CACHE,
                            task_run_name="pitr-restore-{target}")
prove_rpo_task = task(prove_rpo, name="prove-rpo", cache_policy=NO_CACHE)
