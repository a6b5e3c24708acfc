"""verify-backups: prove the backups (runbook 002 "Daily Backup Verification"). Runs right after
every backup (daily-backup and weekly-backup end with it), and on demand.

Which sets: the newest complete set holding each target, and every kept set not verified in the
last 6 days, so no set goes a week without being read back in full. Retention's removals are
skipped (catalog `removed_at`). Never beside a backup run (the environment's backup lease).

Checklist, for each of them:
1. The manifest and its copy read, their checksums hold and they agree (else the good one is
   used, and the problem fails the run); offsite, the same, and equal to the local one;
   RECOVERY.md, locally and offsite, hashes as the manifest says.
2. Each artifact exists locally and its SHA-256 equals the manifest's.
3. Its own tool reads it: `pg_restore --list`, `git bundle verify` (refs as recorded), SQLite
   `integrity_check`, every tar member.
4. The offsite copy exists, has the right size, and its downloaded bytes hash the same.
Then the catalog marks what verified; the run fails naming every target that did not.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from tasks.backup import verify_artifact_task
from tasks.backup.verify import verify_set_files
from tasks.backup.catalog import mark_verified, removed_artifacts, sets_to_verify
from tasks.backup.manifest import ManifestError, read_manifest
from tasks.backup.report import publish_verification_report
from tasks.environment import LoadedEnvironment, load_environment
from tasks.locks import TargetBusy, lock_for, target_lock
from tasks.reporting import STATUS_ICON, final_state, publish_summary
from tradeops.clock import utcnow


@flow(name="verify-backups", **FAILURE_HOOKS)
def verify_backups(environment: str = "default") -> State:
    """Verify the newest set of every target and every kept set not verified for a week."""
    env = load_environment(environment)
    try:  # never beside a backup run, whose retention may be removing what this reads
        with target_lock(lock_for("backup", env.name, "run", env.store_url), f"the backups of {env.name}"):
            return run_verification(env)
    except TargetBusy as exc:
        return final_state(publish_summary("verify-backups", env.name, env.store_url,
                                           f"# Backup verification: {env.name}\n\n{exc}", {"failures": {}},
                                           str(exc)), str(exc))


def run_verification(env: LoadedEnvironment) -> State:
    logger = get_run_logger()
    environment = env.name
    storage = env.block.offsite()
    key_block = env.block.backup_encryption_key_block
    rows, failures = [], {}
    for backup_set in sets_to_verify(env.store_url, environment, utcnow()):
        set_dir = Path(backup_set.manifest_path).parent
        try:
            manifest, manifest_problems = read_manifest(set_dir)
        except ManifestError as exc:
            failures[backup_set.set_id] = f"manifest unusable: {exc}"
            mark_verified(env.store_url, backup_set.set_id, [], whole_set=False)
            continue
        set_problems = manifest_problems + verify_set_files(set_dir, manifest, storage)
        if set_problems:
            failures[f"{backup_set.set_id} set files"] = "; ".join(set_problems)
            logger.error("%s: %s", backup_set.set_id, "; ".join(set_problems))
        rows += [(STATUS_ICON["fail"], backup_set.set_id, "set files", "manifest, copy, RECOVERY.md", problem)
                 for problem in set_problems]
        removed = removed_artifacts(env.store_url, backup_set.set_id)  # by retention, on purpose
        checks = {(e.target, e.kind): verify_artifact_task.submit(set_dir, e, storage, key_block)
                  for e in manifest.artifacts if (e.target, e.kind) not in removed}
        verified = []
        for (target, kind), future in checks.items():
            problems = future.result()
            rows.append((STATUS_ICON["fail" if problems else "pass"], backup_set.set_id, target, kind,
                         "; ".join(problems)))
            if problems:
                failures[f"{target} ({kind}) in {backup_set.set_id}"] = "; ".join(problems)
                logger.error("%s %s in %s: %s", target, kind, backup_set.set_id, "; ".join(problems))
            else:
                verified.append((target, kind))
        mark_verified(env.store_url, backup_set.set_id, verified,
                      whole_set=len(verified) == len(checks) and not set_problems)

    if not rows and not failures:
        failures["catalog"] = "no complete backup set to verify"
    return publish_verification_report(env, rows, failures)
