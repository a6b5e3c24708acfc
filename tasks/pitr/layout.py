"""Where PITR keeps things offsite, in one place (the pgBackRest repository layout, on our store):

    pitr/<environment>/<target>/<system identifier>/
        archive.json                          the cluster: system identifier, WAL segment size, page magic
        wal/<first 16 hex digits>/<file>-<sha256>   segments, .partial and .backup files
        wal/history/<file>-<sha256>           timeline history files
        base/<backup id>/base.tar, pg_wal.tar, backup_manifest, backup.json (written last)

The system identifier keeps a re-initialised cluster's WAL (same segment names, other content)
apart from the old one's. The checksum in every WAL file's name is what a restore checks it
against, so the archive proves itself without the ops store (the site may be lost with it).
"""

from __future__ import annotations

ARCHIVE_INFO = "archive.json"
BACKUP_INFO = "backup.json"


def target_prefix(environment: str, target: str) -> str:
    return f"pitr/{environment}/{target}"


def archive_prefix(environment: str, target: str, system_identifier: int) -> str:
    return f"{target_prefix(environment, target)}/{system_identifier}"


def wal_prefix(prefix: str) -> str:
    return f"{prefix}/wal/"


def wal_key(prefix: str, archived: str) -> str:
    """The key of an archived WAL file (`<file>-<sha256>`)."""
    folder = "history" if ".history-" in archived else archived[:16]
    return f"{prefix}/wal/{folder}/{archived}"


def base_prefix(prefix: str, backup_id: str) -> str:
    return f"{prefix}/base/{backup_id}"


def system_of_key(key: str, environment: str, target: str) -> int | None:
    """The system identifier folder a key lies in, or None."""
    head = target_prefix(environment, target) + "/"
    if not key.startswith(head):
        return None
    first = key[len(head):].split("/", 1)[0]
    return int(first) if first.isdigit() else None
