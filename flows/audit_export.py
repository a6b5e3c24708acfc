"""audit-export: the audit chain's head and the day's entries copied offsite, daily (issue 7;
runbook 000 "Audit Trail Management": audit data kept 7 years).

Checklist:
1. The whole chain verifies in the ops store (`tradeops audit verify`'s walk).
2. Every head exported before still matches its entry in the store.
3. The entries appended since the last export are walked again as they are written (each hash
   recomputed, linked to the last exported head), then the new head is written.
4. Both go offsite, entries first and the head last, each checked by size and SHA-256, with
   S3 Object Lock in compliance mode for 7 years where the bucket has Object Lock.
A chain that does not hold is never exported: the run fails naming the entry at fault, so a
rewrite cannot be laundered into the exports. Report: what was checked and exported, and where.
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from tasks.access import current_actor
from tasks.audit.exports import (
    AuditExportError, ExportCheck, ExportFiles, check_against_exports, export_root, retain_until, write_export,
)
from tasks.audit.verify import ChainReport, open_chain, verify_chain
from tasks.backup.offsite import publish_offsite
from tasks.environment import LoadedEnvironment, load_environment
from tradeops.files import sha256_file
from tasks.locks import lock_for, target_lock
from tasks.reporting import final_state, markdown_table, publish_summary
from tradeops.store.records import append_audit, current_flow_run_id


@flow(name="audit-export", **FAILURE_HOOKS)
def audit_export(environment: str = "default") -> State:
    """Verify the audit chain, then copy its new entries and head offsite under Object Lock."""
    env = load_environment(environment)
    storage = env.block.offsite()
    if storage is None:
        return report_export(env, None, None, None, None,
                             f"environment {env.name} has no offsite storage ([offsite] url): the audit chain "
                             "head must be exported somewhere the ops store's writers cannot rewrite")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    folder = env.block.output_dir("audit-exports", env.name, f"{now:%Y%m%dT%H%M%SZ}")
    folder.mkdir(parents=True, exist_ok=True)
    with target_lock(lock_for("audit-export", env.name, "chain", env.store_url), f"the audit exports of {env.name}"):
        chain_report = verify_chain(env.store_url)
        with open_chain(env.store_url) as chain:
            check = check_against_exports(chain, storage, env.name, folder)
            failure = _refusal(chain_report, check)
            files = None
            if failure is None:
                try:
                    files = write_export(chain, env.name, folder, now, check.latest, current_flow_run_id())
                except AuditExportError as exc:
                    failure = str(exc)
        uploaded = upload_export(storage, files, now) if files else None
    append_audit(env.store_url, "audit_export", current_actor(env).user, success=failure is None,
                 details={"environment": env.name, "failure": failure,
                          **({k: files.head[k] for k in ("first_id", "last_id", "entries", "head_hash")}
                             if files else {}), "offsite": uploaded})
    return report_export(env, chain_report, check, files, uploaded, failure)


def _refusal(chain_report: ChainReport, check: ExportCheck) -> str | None:
    if not chain_report.intact:
        return f"nothing exported: {chain_report.summary()}"
    if not check.intact:
        return f"nothing exported: {check.summary()}"
    return None


def upload_export(storage, files: ExportFiles, now: datetime) -> dict:
    """Entries first, head last: a head offsite always has its entries there before it."""
    until = retain_until(now)
    locked = storage.object_lock_enabled()
    keys = []
    for path, key in ((files.entries_path, files.entries_key), (files.head_path, files.head_key)):
        if path is not None:
            publish_offsite(storage, path, key, sha256_file(path), path.stat().st_size,
                            retain_until=until)
            keys.append(key)
    return {"keys": keys, "object_lock": locked, "retain_until": until.isoformat() if locked else None,
            "storage": storage.describe()}


def report_export(env: LoadedEnvironment, chain_report: ChainReport | None, check: ExportCheck | None,
                  files: ExportFiles | None, uploaded: dict | None, failure: str | None) -> State:
    lines = [f"# Audit chain export: {env.name}"]
    if failure:
        lines.append(f"**Failed:** {failure}")
    rows = []
    if chain_report is not None:
        rows.append(("chain in the ops store", "intact" if chain_report.intact else "**BROKEN**",
                     chain_report.summary()))
    if check is not None:
        rows.append(("earlier exported heads", "match" if check.intact else "**DIFFER**", check.summary()))
    if files is not None:
        head = files.head
        span = f"ids {head['first_id']}..{head['last_id']}" if head["entries"] else "no new entries"
        rows.append(("this export", f"{head['entries']} entries", f"{span}; head {head['head_hash']}"))
    if uploaded is not None:
        lock = (f"Object Lock (compliance) until {uploaded['retain_until'][:10]}" if uploaded["object_lock"]
                else "no Object Lock on this storage: whoever controls it can delete the exports")
        rows.append(("offsite", f"{len(uploaded['keys'])} objects", f"{uploaded['storage']}; {lock}"))
    if rows:
        lines.append(markdown_table(["check", "result", "details"], rows))
    if uploaded:
        lines.append("Objects: " + ", ".join(f"`{k}`" for k in uploaded["keys"]))
    lines.append(f"Exports live under `{export_root(env.name)}` offsite; `tradeops audit verify` checks the "
                 "ops store against every exported head.")
    result = {"chain": chain_report.to_dict() if chain_report else None,
              "exports_check": check.to_dict() if check else None,
              "export": files.head if files else None, "offsite": uploaded}
    result = publish_summary("audit-export", env.name, env.store_url, "\n\n".join(lines), result, failure)
    return final_state(result, failure)
