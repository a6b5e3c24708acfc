"""Reports of the PITR flows: markdown for the summary artifact, a result for the CLI and API."""

from __future__ import annotations

from typing import Any

from tasks.reporting import markdown_table

MIB = 2 ** 20


def wal_archive_report(environment: str, outcomes: list, now: float) -> tuple[str, dict[str, Any], str | None]:
    rows, sections, failures, targets = [], [], {}, []
    for o in outcomes:
        drain = o.drain
        age = drain.oldest_left_age(now)
        rows.append((f"db:{o.target}", len(drain.uploaded), f"{drain.bytes / MIB:.1f}",
                     f"{drain.bytes / MIB / drain.seconds:.0f}" if drain.seconds and drain.bytes else "",
                     len(drain.left), f"{age / 60:.1f} min" if age is not None else "", o.newest_segment or "",
                     o.status.last_archived_wal or "", "failing" if o.status.failing else "ok" if not o.status.error
                     else "unknown", len(o.gaps)))
        if o.gaps:
            sections.append(f"## db:{o.target}: gaps in the WAL archive\n\n"
                            + markdown_table(["timeline", "first missing", "last missing", "segments"],
                                             [(g.timeline, g.first, g.last, g.count) for g in o.gaps]))
        problems = o.problems + [g.describe() for g in o.gaps]
        if problems:
            failures[f"db:{o.target}"] = "; ".join(problems)
        targets.append({"target": o.target, "system_identifier": o.system_identifier, "uploaded": drain.uploaded,
                        "bytes": drain.bytes, "seconds": round(drain.seconds, 3),
                        "left_in_spool": [f.name for f in drain.left], "newest_segment": o.newest_segment,
                        "archived_files": o.archived_files, "archiver": o.status.as_dict(),
                        "gaps": [vars(g) for g in o.gaps], "problems": problems})
    markdown = "\n\n".join([f"# WAL archive: {environment}", markdown_table(
        ["target", "sent offsite", "MiB", "MiB/s", "left in spool", "oldest waiting", "newest archived",
         "archiver's last", "archive_command", "gaps"], rows), *sections])
    if failures:
        markdown += "\n\n## Problems\n\n" + "\n".join(f"- **{t}**: {p}" for t, p in failures.items())
    failure = "; ".join(f"{t}: {p}" for t, p in failures.items()) or None
    return markdown, {"targets": targets, "failures": failures}, failure


def base_backup_report(environment: str, done: list, failures: dict[str, str], expiries: list = (),
                       dry_run: bool = False) -> tuple[str, dict[str, Any], str | None]:
    rows = [(f"db:{b.target}", b.backup_id, b.timeline, b.start_lsn, b.stop_lsn, b.stop_time,
             f"{sum(f.size for f in b.files) / MIB:.1f}", f"{seconds:.1f}") for b, seconds in done]
    markdown = f"# Base backups: {environment}\n\n" + markdown_table(
        ["target", "backup", "timeline", "start LSN", "stop LSN", "stopped (database clock)", "MiB", "seconds"], rows)
    if expiries:
        markdown += (f"\n\n## Expiry{' (dry run: nothing removed)' if dry_run else ''}\n\n" + markdown_table(
            ["target", "window from", "backups kept", "backups expired", "WAL files removed", "WAL removed up to"],
            [(f"db:{e.target}", e.window_start.isoformat(timespec="seconds"), len(e.kept),
              ", ".join(e.expired) or "none", len(e.wal_keys), e.as_dict()["last_wal_removed"] or "")
             for e in expiries]))
        untouched = [f"db:{e.target} cluster {c}" for e in expiries for c in e.untouched_clusters]
        if untouched:
            markdown += "\n\nWAL kept, no kept base backup of that cluster: " + "; ".join(untouched)
    if failures:
        markdown += "\n\n## Failures\n\n" + "\n".join(f"- **{t}**: {r}" for t, r in failures.items())
    result = {"backups": [{**b.as_dict(), "seconds": round(s, 2)} for b, s in done], "failures": failures,
              "expiry": [{**e.as_dict(), "dry_run": dry_run, "wal_keys": list(e.wal_keys)} for e in expiries]}
    return markdown, result, "; ".join(f"{t}: {r}" for t, r in failures.items()) or None


def pitr_report(environment: str, result, rpo) -> str:
    lines = [f"# Point-in-time restore: {environment}, db:{result.target}",
             markdown_table(["", ""], [
                 ("target time", result.target_time + ("" if result.target_time == "latest" else
                                                       f" (inclusive: {'yes' if result.inclusive else 'no'})")),
                 ("base backup", result.backup), ("replayed up to (last commit)", result.recovered_to or ""),
                 ("timeline after promotion", result.timeline or ""),
                 ("WAL fetched", f"{result.wal_fetched} files, {result.wal_bytes / MIB:.1f} MiB"),
                 ("time: fetch + unpack, recovery, total",
                  f"{result.fetch_seconds:.1f} s, {result.recovery_seconds:.1f} s, {result.seconds:.1f} s"),
                 ("cluster", f"running: port {result.port}, socket folder {result.socket_dir}, data "
                             f"{result.data_dir}" if result.running else "stopped and removed"),
             ])]
    if rpo is not None:
        lines.append("## Recovery point\n\n" + markdown_table(
            ["table", "rows up to", "source rows", "restored rows", "content", "newest restored row", "RPO"],
            [(rpo.table, rpo.cutoff, rpo.source_rows, rpo.restored_rows, "equal" if rpo.passed else "differs",
              rpo.newest_restored or "", f"{rpo.rpo_seconds:.1f} s" if rpo.rpo_seconds is not None else "")]))
    if result.gaps:
        lines.append("Gaps in the WAL archive after the base backup (no restore passes them): "
                     + "; ".join(result.gaps))
    if result.running:
        lines.append(f"Connect: `psql \"{result.database_url}\"`. Stop: `pg_ctl -D {result.data_dir} -m fast stop` "
                     f"(as the cluster owner), then remove {result.folder}.")
    if result.problems:
        lines.append("## Problems\n\n" + "\n".join(f"- {p}" for p in result.problems))
    return "\n\n".join(lines)
