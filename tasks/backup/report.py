"""Backup reports: a set's summary (every artifact, what failed, what retention removed) and the
dry run's list of what retention would delete."""

from __future__ import annotations

from pathlib import Path

from prefect.states import State

from tasks.backup.manifest import Manifest
from tasks.backup.retention import catalog_facts, deletions, plan_retention
from tasks.environment import LoadedEnvironment
from tasks.reporting import STATUS_ICON, final_state, markdown_table, publish_summary
from tradeops.clock import utcnow


def publish_retention_dry_run(env: LoadedEnvironment, kind: str) -> State:
    """What retention would delete now: every local path and offsite key, and what it keeps."""
    plan = plan_retention(catalog_facts(env.store_url, env.name), utcnow(), env.block.backup_retention_days)
    doomed = deletions(plan, env.block.offsite(), env.name)
    rows = [(d.set_id, d.what, d.where, d.location) for d in doomed]
    kept = [(a.set_id, f"{a.target} {a.kind}", why) for a, why in plan.keep_protected]
    markdown = "\n\n".join(filter(None, [
        f"# {kind} backup dry run: what retention would delete",
        markdown_table(["set", "what", "where", "path or key"], rows) if rows else "Nothing has expired.",
        "## Kept although expired\n\n" + markdown_table(["set", "artifact", "why"], kept) if kept else "",
    ]))
    result = {"dry_run": True, "would_expire": [s.set_id for s in plan.expire_sets],
              "would_remove": [f"{a.set_id} {a.target} {a.kind}" for a in plan.remove],
              "would_delete": [{"set_id": d.set_id, "what": d.what, "where": d.where, "location": d.location}
                               for d in doomed],
              "protected": {f"{a.set_id} {a.target} {a.kind}": why for a, why in plan.keep_protected}}
    return final_state(publish_summary(f"{kind}-backup", env.name, env.store_url, markdown, result), None)


def publish_backup_report(env: LoadedEnvironment, kind: str, manifest: Manifest, set_dir: Path,
                          failures: dict[str, str], storage, expired: list[str], removed: list[str]) -> State:
    rows = [(e.target, e.kind, f"{e.size:,}", e.sha256[:12], e.reused_from or "", e.offsite_key or "")
            for e in manifest.artifacts]
    failure = None
    if failures:
        by_reason: dict[str, list[str]] = {}
        for target, reason in failures.items():  # one line per distinct reason, naming every target
            by_reason.setdefault(reason, []).append(target)
        failure = f"{len(failures)} target(s) failed: " + "; ".join(
            f"{', '.join(targets)}: {reason}" for reason, targets in by_reason.items())
    markdown = "\n\n".join(filter(None, [
        f"# {kind.capitalize()} backup {manifest.set_id}",
        f"{len(manifest.artifacts)} artifact(s), {sum(e.size for e in manifest.artifacts):,} bytes in `{set_dir}`; "
        f"offsite: {storage.describe() if storage else 'not configured'}",
        markdown_table(["target", "kind", "bytes", "sha256", "reuses set", "offsite key"], rows),
        "## Failed\n\n" + markdown_table(["target", "reason"], failures.items()) if failures else "",
        "## Retention\n\nRemoved expired artifacts: " + ", ".join(removed)
        + (f"; sets removed whole: {', '.join(expired)}" if expired else "") if removed or expired else "",
    ]))
    result = {"set_id": manifest.set_id, "set_dir": str(set_dir), "failures": failures, "expired_sets": expired,
              "removed_artifacts": removed,
              "artifacts": [{"target": e.target, "kind": e.kind, "size": e.size, "sha256": e.sha256,
                             "reused_from": e.reused_from, "offsite_key": e.offsite_key}
                            for e in manifest.artifacts]}
    result = publish_summary(f"{kind}-backup", env.name, env.store_url, markdown, result, failure,
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)


def publish_verification_report(env: LoadedEnvironment, rows: list[tuple], failures: dict[str, str]) -> State:
    """A row per artifact and set-file problem checked (status, set, target, kind, problem); failed
    when anything did not verify."""
    failure = None
    if failures:
        failure = f"{len(failures)} problem(s): " + "; ".join(f"{k}: {v}" for k, v in failures.items())
    markdown = "\n\n".join([
        f"# Backup verification: {env.name}",
        markdown_table(["status", "set", "target", "kind", "problem"], rows),
    ])
    result = {"verified": sum(r[0] == STATUS_ICON["pass"] for r in rows), "failures": failures,
              "artifacts": [{"status": "failed" if r[4] else "verified", "set_id": r[1], "target": r[2],
                             "kind": r[3], "problem": r[4]} for r in rows]}
    result = publish_summary("verify-backups", env.name, env.store_url, markdown, result, failure,
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)
