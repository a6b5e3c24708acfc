"""Log rotation and archival: one module per concern; the tasks wrap them here."""

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.logs.archive import archive_rotated_file
from tasks.logs.rotation import rotate_live_file

rotate_live_file_task = task(rotate_live_file, name="rotate-log", cache_policy=NO_CACHE,
                             task_run_name="rotate-{path.name}")
archive_rotated_file_task = task(archive_rotated_file, name="archive-log", cache_policy=NO_CACHE,
                                 task_run_name="archive-{path.name}")
