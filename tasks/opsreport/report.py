"""The ops report's layout: a headline line, then only the sections that have something, failures
first, every run linked to its logs."""

from __future__ import annotations

from typing import Callable

from tasks.capacity.report import human_bytes
from tasks.opsreport.gather import OpsPeriod
from tasks.opsreport.period import ReportPeriod
from tasks.reporting import markdown_table

MESSAGE_CHARS = 160


def _link(linker: Callable[[str | None], str | None], run_id: str | None) -> str:
    url = linker(run_id)
    return f"[{run_id[:8]}]({url})" if run_id and url else ""


def _time(moment) -> str:  # noqa: ANN001
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


def headline(found: OpsPeriod) -> str:
    runs, failed = len(found.runs), len(found.failures)
    open_incidents = sum(1 for i in found.incidents if i[2] != "resolved")
    backups = sum(1 for b in found.backups if b[2] == "complete")
    return (f"**{runs} runs, {failed} failed** · {backups} backup set(s) complete of {len(found.backups)} · "
            f"{len(found.drills)} DR drill(s) · {len(found.evaluations)} experiment evaluation(s) · "
            f"{open_incidents} open incident(s) · {sum(found.alerts.values())} alert(s) sent")


def ops_markdown(environment: str, period: ReportPeriod, found: OpsPeriod,
                 linker: Callable[[str | None], str | None]) -> str:
    title = "Daily" if period.kind == "day" else "Weekly"
    sections = [f"# {title} ops report {environment}: {_time(period.start)} to {_time(period.end)} UTC",
                headline(found)]
    if found.failures:
        sections.append("## Failed runs\n\n" + markdown_table(
            ["when", "flow", "state", "why", "run"],
            [(_time(r.at), r.flow, r.state, r.message[:MESSAGE_CHARS], _link(linker, r.flow_run_id))
             for r in found.failures]))
    if found.incidents:
        sections.append("## Incidents\n\n" + markdown_table(
            ["id", "severity", "status", "title", "opened", "resolved"],
            [(i[0], i[1], i[2], i[3], _time(i[4]), _time(i[5])) for i in found.incidents]))
    sections.append("## What ran\n\n" + (markdown_table(
        ["flow", "runs", "failed", "last state", "last at"],
        [(t.flow, t.runs, t.failed, t.last_state, _time(t.last_at)) for t in found.tallies])
        if found.tallies else "No flow run recorded in the period."))
    if found.backups:
        sections.append("## Backups\n\n" + markdown_table(
            ["set", "kind", "status", "verified", "run"],
            [(b[0], b[1], b[2], "yes" if b[3] else "no", _link(linker, b[4])) for b in found.backups]))
    if found.drills:
        sections.append("## DR drills\n\n" + markdown_table(
            ["set", "passed", "RTO s", "RPO s", "run"],
            [(d[0], "yes" if d[1] else "**no**", f"{d[2]:.0f}" if d[2] is not None else "",
              f"{d[3]:.0f}" if d[3] is not None else "", _link(linker, d[4])) for d in found.drills]))
    if found.evaluations:
        sections.append("## Experiments\n\n" + markdown_table(
            ["experiment", "decision", "p-value", "run"],
            [(e[0], e[1], f"{e[2]:.4f}" if e[2] is not None else "", _link(linker, e[3])) for e in found.evaluations]))
    if found.changes:
        sections.append("## Change requests\n\n" + markdown_table(["number", "title", "risk", "status", "submitted by"],
                                                                  found.changes))
    if found.sizes:
        sections.append("## Capacity changes\n\n" + markdown_table(
            ["kind", "series", "at start", "at end", "change"],
            [(s.kind, s.series, human_bytes(s.first_bytes), human_bytes(s.last_bytes),
              human_bytes(s.last_bytes - s.first_bytes)) for s in found.sizes]))
    if found.baselines:
        sections.append("## Performance baseline changes (p95)\n\n" + markdown_table(
            ["operation", "previous p95 s", "p95 s", "samples"],
            [(b.operation, f"{b.previous_p95:.3f}" if b.previous_p95 is not None else "", f"{b.p95:.3f}", b.samples)
             for b in found.baselines]))
    if found.alerts:
        sections.append("Alerts sent by severity: " + ", ".join(f"{k} {v}" for k, v in sorted(found.alerts.items())))
    return "\n\n".join(sections)
