"""WAL archiving, the part PostgreSQL runs: `archive_command` copies each WAL file into a local
spool (`tradeops wal push %p --spool DIR`) and `restore_command` takes each file a restore asks
for from a queue the tradeops restore fills (`tradeops wal get %f %p --queue DIR`).

Both run once per 16 MiB segment as the cluster owner, so this package imports the standard
library only: no Prefect, no configuration, no secrets, and it starts in milliseconds. Moving the
spool offsite, finding gaps and restoring are the flows' work (tasks/pitr/).
"""
