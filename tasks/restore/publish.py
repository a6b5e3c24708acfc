"""Putting a restored target in place, only after it was restored and checked in staging.

A database is restored into `tradeops_restoring_<env>_<run>_<target>` and renamed to its final
name once its checks pass. When the final name exists (an overwrite), the two renames happen in
one transaction (PostgreSQL's ALTER DATABASE ... RENAME is transactional): the name never points
at nothing and never at a half-restored database; the database it replaced is dropped after.
Folders and files are restored under a hidden staging folder and renamed into place the same way.

A restore killed at any point leaves the live target as it was; its staging databases and folders
are swept by the next restore of the environment (the restore lock means none is in use).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

from psycopg2 import sql

from tasks.databases import scalar
from tradeops.files import fsync_dir
from tasks.restore.postgres import admin_connection, databases_named, drop_database

STAGING_DB = "tradeops_restoring_"
REPLACED_DB = "tradeops_replaced_"
TERMINATE_WAIT_SECONDS = 10.0


def _environment_tag(environment: str) -> str:
    return hashlib.sha256(environment.encode()).hexdigest()[:6]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def staging_prefix(environment: str) -> str:
    return f"{STAGING_DB}{_environment_tag(environment)}_"


def staging_database_name(environment: str, run: str, target: str) -> str:
    """A plain identifier within PostgreSQL's 63 bytes, unique per environment, run and target."""
    return f"{staging_prefix(environment)}{run}_{_slug(target.split(':', 1)[-1])}"[:63]


def replaced_database_name(environment: str, run: str, target: str) -> str:
    return f"{REPLACED_DB}{_environment_tag(environment)}_{run}_{_slug(target.split(':', 1)[-1])}"[:63]


def put_database_in_place(server_url: str, staging: str, final: str, replaced: str) -> bool:
    """Rename `staging` to `final`; an existing `final` is closed to new sessions, its sessions
    ended, and renamed to `replaced` in the same transaction, then dropped. Returns whether a
    database was replaced."""
    name = sql.Identifier
    with admin_connection(server_url) as conn, conn.cursor() as cur:
        if scalar(conn, "SELECT 1 FROM pg_database WHERE datname = %s", (final,)) is None:
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(name(staging), name(final)))
            return False
        cur.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name(final)))
        try:
            _end_sessions(cur, final)
            cur.execute("BEGIN")
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(name(final), name(replaced)))
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(name(staging), name(final)))
            cur.execute("COMMIT")
        except BaseException:
            if conn.status != 1:  # inside the failed transaction: end it before re-opening the database
                cur.execute("ROLLBACK")
            cur.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name(final)))
            raise
    drop_database(server_url, replaced)
    return True


def _end_sessions(cur, database: str) -> None:
    """Terminate every session on `database` (closed to new ones first) and wait until they are gone."""
    deadline = time.monotonic() + TERMINATE_WAIT_SECONDS
    while True:
        cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
        if cur.fetchone()[0] == 0 or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def staging_folder(root: Path, run: str) -> Path:
    return root.parent / f".{root.name}.restoring-{run}"


def download_folder(root: Path, run: str) -> Path:
    return root.parent / f".{root.name}.fetch-{run}"


def put_path_in_place(staged: Path, final: Path, run: str) -> bool:
    """Rename a restored file or folder into place; whatever held the name before is renamed
    aside first and removed after. Returns whether something was replaced."""
    final.parent.mkdir(parents=True, exist_ok=True)
    aside = final.with_name(f".{final.name}.replaced-{run}")
    replaced = final.exists() or final.is_symlink()
    if replaced:
        os.replace(final, aside)
    os.replace(staged, final)
    fsync_dir(final.parent)
    if replaced:
        shutil.rmtree(aside) if aside.is_dir() and not aside.is_symlink() else aside.unlink()
    return replaced


def put_back_aside(root: Path) -> list[str]:
    """A restore killed between its two renames left the old content aside and the name empty:
    put it back (the new content was still in staging, and is swept)."""
    repaired = []
    if not root.is_dir():
        return repaired
    for aside in [*root.glob(".*.replaced-*"), *root.glob("*/.*.replaced-*")]:
        original = aside.with_name(aside.name[1:].rsplit(".replaced-", 1)[0])
        if original.exists():
            shutil.rmtree(aside) if aside.is_dir() else aside.unlink()
        else:
            os.replace(aside, original)
            repaired.append(f"{original} put back")
    return repaired


def sweep_restore_leftovers(environment: str, servers: list[str], folder: Path, root_name: str = "*") -> list[str]:
    """What restores killed before they finished left behind: staging databases and folders, a
    name left empty between two renames (its old content is put back), and databases replaced by
    a restore killed just before it dropped them (an emergency backup of each was taken before
    the swap). `folder` holds the restore folders (`root_name`: all of them, or one). The restore
    lock guarantees none of it belongs to a running restore."""
    swept = []
    for root in folder.glob(root_name):
        if not root.name.startswith("."):
            swept += put_back_aside(root)
    for pattern in (f".{root_name}.restoring-*", f".{root_name}.fetch-*"):
        for leftover in folder.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
            swept.append(str(leftover))
    for server in servers:
        for prefix in (staging_prefix(environment), f"{REPLACED_DB}{_environment_tag(environment)}_"):
            for name in databases_named(server, prefix):
                drop_database(server, name)
                swept.append(f"database {name}")
    return swept
