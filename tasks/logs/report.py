"""The log-archival report: what each directory rotated, archived (ratio, throughput), copied
offsite, deleted, and what waits for a writer; failures last."""

from __future__ import annotations

from prefect.states import State

from tasks.environment import LoadedEnvironment
from tasks.reporting import final_state, markdown_table, publish_summary

MIB = 1024 * 1024


def publish_archival_report(env: LoadedEnvironment, plans: list[dict]) -> State:
    """The run's report: a row per directory (rotated, archived, ratio, throughput, copied, deleted,
    waiting), then per directory what was rotated, archived and left for a writer; failures last."""
    sections = [f"# Log archival: {env.name}"]
    summary_rows, failures = [], {}
    for plan in plans:
        archived = [a for a in plan["archived"] if a["outcome"] == "archived"]
        bytes_in = sum(a["original_bytes"] for a in archived)
        bytes_out = sum(a["archive_bytes"] for a in archived)
        seconds = sum(a["seconds"] for a in archived)
        summary_rows.append((
            f"logs:{plan['target']}", len(plan["rotated"]), len(plan["archived"]), f"{bytes_in / MIB:.1f}",
            f"{bytes_out / MIB:.1f}", f"{bytes_out / bytes_in:.3f}" if bytes_in else "",
            f"{bytes_in / MIB / seconds:.0f}" if seconds else "", len(plan["uploaded"]),
            len(plan["deleted_local"]), len(plan["deleted_offsite"]), len(plan["waiting"])))
        if plan["failures"]:
            failures[f"logs:{plan['target']}"] = "; ".join(plan["failures"])
    sections.append(markdown_table(
        ["target", "rotated", "archived", "MiB in", "MiB out", "ratio", "MiB/s", "copied offsite",
         "deleted locally", "deleted offsite", "waiting for a writer"], summary_rows))
    for plan in plans:
        if plan["rotated"]:
            sections.append(f"## logs:{plan['target']}: rotated\n\n" + markdown_table(
                ["file", "renamed to", "MiB"], [(r["file"], r["rotated_to"], f"{r['bytes'] / MIB:.1f}")
                                                for r in plan["rotated"]])
                + (f"\n\n{plan['reopen']}" if plan["reopen"] else ""))
        if plan["archived"]:
            sections.append(f"## logs:{plan['target']}: archived\n\n" + markdown_table(
                ["file", "type", "lines", "from", "to", "ratio", "outcome"],
                [(a["file"], a["type"], a.get("lines", ""), (a.get("first_at") or "")[:19],
                  (a.get("last_at") or "")[:19],
                  f"{a['archive_bytes'] / a['original_bytes']:.3f}" if a.get("original_bytes") else "", a["outcome"])
                 for a in plan["archived"]]))
        if plan["waiting"]:
            sections.append(f"## logs:{plan['target']}: still open by a writer (kept, archived later)\n\n"
                            + markdown_table(["file", "pids"], [(w["file"], ", ".join(map(str, w["pids"])))
                                                               for w in plan["waiting"]]))
    if failures:
        sections.append("## Failures\n\n" + "\n".join(f"- **{t}**: {r}" for t, r in failures.items()))
    failure = "; ".join(f"{t}: {r}" for t, r in failures.items()) or None
    result = {"directories": [{k: v for k, v in plan.items() if k not in ("block", "ready")} for plan in plans],
              "failures": failures}
    result = publish_summary("log-archival", env.name, env.store_url, "\n\n".join(sections), result, failure,
                             reports_dir=str(env.block.output_dir("reports")))
    return final_state(result, failure)
