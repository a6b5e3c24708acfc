"""restore: bring a backup set back into targets you name (runbook 004 "Recovery Procedures",
000 "Emergency Procedures"). On demand: `tradeops run restore --set set_id=...`.

Checklist:
1. The set: by `set_id`, else the newest verified set of `date` (YYYY-MM-DD, UTC), else the
   newest verified set. Its manifest from the local set folder or offsite (`source`).
2. Plan every destination first: a new database per PostgreSQL target (`database_names`, default
   `<database>_restored_<set date>`), and a folder (`directory`, default
   `<data_dir>/restores/<set id>`) with `git/<repo>.git`, `files/<target>/`, `db/`. An existing
   non-empty database or folder is refused, and nothing is changed, unless `overwrite=true`.
3. With `overwrite`, an emergency backup of what will be replaced comes first.
4. Restore and check each target as the DR drill does; audit the restore.
"""

from __future__ import annotations

import shutil
from datetime import date as Date
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import psycopg2
from prefect import flow, get_run_logger
from prefect.states import State

from tasks.backup.archives import tar_paths
from tasks.backup.catalog import chosen_set
from tasks.backup.manifest import ManifestError, read_manifest
from tasks.backup.postgres import BackupError, dump_postgres
from tasks.databases import is_sqlite
from tasks.environment import LoadedEnvironment, load_environment
from tasks.failure_alerts import FAILURE_HOOKS
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary, report_denial
from tasks.restore.fetch import RestoreError, fetch_offsite, local_artifact, offsite_manifest
from tasks.restore.postgres import create_database, database_name, database_tables, database_url, drop_database
from tasks.restore import restore_target_task
from tasks.restore.targets import Destination
from tasks.access import FLOW_PERMISSIONS, AccessDenied, require_permission
from tradeops.store.records import append_audit


@flow(name="restore", **FAILURE_HOOKS)
def restore(environment: str = "default", set_id: str | None = None, date: Date | None = None,
            source: str = "auto", targets: list[str] | None = None, database_names: dict[str, str] | None = None,
            directory: str | None = None, overwrite: bool = False) -> State:
    """Restore a backup set. `source`: auto (local folder if present, else offsite), local, offsite.
    `targets`: e.g. ["db:platform", "git:momentum_alpha"] (default: all)."""
    env = load_environment(environment)
    try:
        actor = require_permission(env, FLOW_PERMISSIONS["restore"], "backup_restore")
    except AccessDenied as exc:
        return report_denial("restore", env.name, env.store_url, f"Restore ({env.name})", str(exc),
                             reports_dir=str(env.block.output_dir("reports")))
    try:
        plan = plan_restore(env, set_id, date, source, targets, database_names or {}, directory, overwrite)
    except RestoreError as exc:
        return report_restore(env, None, [], str(exc), {})
    except psycopg2.Error as exc:  # the database server is down: nothing was touched
        return report_restore(env, None, [], f"cannot plan the restore: {str(exc).strip().splitlines()[0]}", {})
    try:
        emergency = take_emergency_backups(env, plan) if overwrite else {}
    except (BackupError, OSError, psycopg2.Error) as exc:
        return report_restore(env, plan["set_id"], [], f"emergency backup failed, nothing was overwritten: {exc}", {})
    try:
        clear_and_create(plan)
    except (OSError, psycopg2.Error) as exc:
        failure = f"preparing the destinations failed after the emergency backups were taken: {exc}"
        append_audit(env.store_url, "backup_restore", actor.user, success=False,
                     details={"environment": env.name, "set_id": plan["set_id"], "error": failure,
                              "destinations": plan["shown"], "emergency_backups": emergency})
        return report_restore(env, plan["set_id"], [], failure, emergency)
    plan["scratch"].mkdir(parents=True, exist_ok=True, mode=0o700)  # decrypted data: owner only
    futures = {target: restore_target_task.submit(target, entries, plan["fetch"], destination,
                                                  env.block.backup_encryption_key_block, plan["scratch"])
               for target, (entries, destination) in plan["targets"].items()}
    outcomes = []
    for target, future in futures.items():
        try:
            outcome = future.result().as_dict()
        except Exception as exc:  # noqa: BLE001 - offsite unreachable and the like: named per target
            outcome = {"target": target, "passed": False, "problems": [f"{target}: {type(exc).__name__}: {exc}"],
                       "rto_seconds": 0.0, "bytes": 0}
        outcomes.append(outcome | {"destination": plan["shown"][target]})
    shutil.rmtree(plan["scratch"], ignore_errors=True)
    failed = [o for o in outcomes if not o["passed"]]
    failure = "; ".join("; ".join(o["problems"]) for o in failed) or None
    append_audit(env.store_url, "backup_restore", actor.user, success=failure is None,
                 details={"environment": env.name, "set_id": plan["set_id"], "source": plan["source"],
                          "destinations": plan["shown"], "overwrite": overwrite, "emergency_backups": emergency})
    return report_restore(env, plan["set_id"], outcomes, failure, emergency)


def plan_restore(env: LoadedEnvironment, set_id: str | None, date: Date | None, source: str,
                 targets: list[str] | None, database_names: dict[str, str], directory: str | None,
                 overwrite: bool) -> dict:
    """Choose the set and every destination; refuse (RestoreError) before anything is written."""
    if source not in ("auto", "local", "offsite"):
        raise RestoreError(f"source must be auto, local or offsite, not {source!r}")
    backup_set = chosen_set(env.store_url, env.name, set_id, date)
    if backup_set is None:
        wanted = f"set {set_id}" if set_id else f"a verified set of {date}" if date else "a verified set"
        raise RestoreError(f"{env.name} has no complete {wanted} in the catalog")
    set_dir = Path(backup_set.manifest_path).parent
    storage = env.block.offsite()
    if source == "auto":
        source = "local" if set_dir.is_dir() else "offsite"
    if source == "offsite":
        if storage is None:
            raise RestoreError("source=offsite but no [offsite] storage is configured")
        manifest = offsite_manifest(storage, env.name, backup_set.set_id)
    else:
        try:
            manifest, _ = read_manifest(set_dir)
        except ManifestError as exc:
            raise RestoreError(f"set {backup_set.set_id}: {exc}; try source=offsite") from None
    root = Path(directory) if directory else env.block.output_dir("restores") / backup_set.set_id
    scratch = root.parent / f".{root.name}.fetch"
    by_target = {target: entries for target, entries in manifest.by_target().items()
                 if not targets or target in targets}
    unknown = sorted(set(targets or ()) - set(by_target))
    if unknown:
        raise RestoreError(f"set {backup_set.set_id} holds no {', '.join(unknown)}; it holds "
                           f"{', '.join(sorted({e.target for e in manifest.artifacts}))}")
    databases = {f"db:{db.target}": db for db in env.block.databases()}
    plan_targets, shown, refused, replace, create = {}, {}, [], [], []
    for target, entries in by_target.items():
        folder = root / _folder(target, entries)
        destination, shown[target] = Destination(directory=root), str(folder)
        if any(e.kind == "pg_dump" for e in entries):
            db = databases.get(target)
            if db is None or is_sqlite(db.url.get_secret_value()):
                raise RestoreError(f"{target}: no PostgreSQL server configured to restore into")
            server = db.url.get_secret_value()
            name = database_names.get(target) or f"{database_name(server)}_restored_{backup_set.set_id[:8]}"
            tables, url = database_tables(server, name), database_url(server, name)
            if tables and not overwrite:
                refused.append(f"{target}: database {name} exists and holds {tables} table(s)")
            elif tables:
                replace.append(("database", target, url))
            if tables is None or (tables and overwrite):
                create.append(url)
            destination = Destination(root, database_url(server, name), db.probe_query)
            shown[target] = f"database {name}"
        elif folder.exists() and any(folder.iterdir()):
            if not overwrite:
                refused.append(f"{target}: {folder} is not empty")
            elif str(folder) not in {location for _, _, location in replace}:
                replace.append(("folder", target, str(folder)))
        plan_targets[target] = (entries, destination)
    if refused:
        raise RestoreError("refusing to overwrite (pass overwrite=true; an emergency backup is taken first): "
                           + "; ".join(refused))
    fetch = (partial(fetch_offsite, storage, into=scratch) if source == "offsite"
             else partial(local_artifact, set_dir))
    return {"set_id": backup_set.set_id, "source": source, "targets": plan_targets, "shown": shown,
            "replace": replace, "create": create, "fetch": fetch, "scratch": scratch}


def _folder(target: str, entries: list) -> str:
    kind = entries[0].kind
    name = target.split(":", 1)[-1]
    if kind == "git_bundle":
        return f"git/{name}.git"
    if kind == "tar":
        return f"files/{target.replace(':', '-')}"
    return str(Path(entries[0].path).parent)


def take_emergency_backups(env: LoadedEnvironment, plan: dict) -> dict[str, str]:
    """Runbook 000 "Emergency Procedures": keep everything the restore will replace, before any
    of it is cleared."""
    logger = get_run_logger()
    folder = env.block.output_dir("backups", env.name, "emergency")
    folder.chmod(0o700)
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    taken = {}
    for what, target, location in plan["replace"]:
        slug = target.replace(":", "-")
        if what == "database":
            path = folder / f"{stamp}-{slug}-{database_name(location)}.dump"
            dump_postgres(location, path, jobs=1)  # one custom-format file, restorable as named
        else:
            path = folder / f"{stamp}-{slug}.tar.gz"
            tar_paths([Path(location)], path)
        taken[target] = str(path)
        logger.warning("%s: emergency backup in %s before overwriting", target, path)
    return taken


def clear_and_create(plan: dict) -> None:
    """Clear what the emergency backups hold, then create the databases to restore into."""
    for what, _, location in plan["replace"]:
        if what == "database":
            drop_database(location, database_name(location))
        else:
            shutil.rmtree(location, ignore_errors=True)
    for url in plan["create"]:
        create_database(url, database_name(url))


def report_restore(env: LoadedEnvironment, set_id: str | None, outcomes: list[dict], failure: str | None,
                   emergency: dict[str, str]) -> State:
    rows = [(STATUS_ICON["pass" if o["passed"] else "fail"], o["target"], o["destination"], f"{o['bytes']:,}",
             f"{o['rto_seconds']:.2f}", "; ".join(o["problems"])) for o in outcomes]
    markdown = "\n\n".join(filter(None, [
        f"# Restore of {set_id or 'no set'} ({env.name})",
        f"**Failed:** {failure}" if failure else "",
        markdown_table(["", "target", "restored into", "bytes", "seconds", "problems"], rows) if rows else "",
        "## Emergency backups taken first\n\n" + markdown_table(["target", "file"], emergency.items())
        if emergency else "",
    ]))
    result = {"set_id": set_id, "targets": outcomes, "emergency_backups": emergency}
    result = publish_summary("restore", env.name, env.store_url, markdown, result, failure,
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)
