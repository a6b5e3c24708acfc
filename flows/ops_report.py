"""ops-report: the end-of-day and weekly operations report (runbook 004 "End of Day Procedures:
Daily Report Generation", Monday "Weekly Maintenance: weekly performance report"; runbook 003
"Weekly Health Audit"). Daily at 23:30 UTC (`period=day`), weekly on Monday at 06:00 (`period=week`).

1. From the ops store only, for the period: every recorded flow run (what ran, what failed and
   why), backup sets and whether verified, DR drills, experiment evaluations, incidents opened,
   resolved or still open, change requests, alerts sent, size changes (databases, disks,
   backups) and performance baselines recomputed against the previous ones.
2. One markdown report, failures first, every run linked to its logs: the summary artifact, and
   the file `<data_dir>/reports/ops/<daily-YYYY-MM-DD | weekly-...>.md`, written atomically.
The report reads; it changes nothing, so it is not audited. Failed only when it cannot be made.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.environment import load_environment
from tasks.opsreport.gather import gather
from tasks.opsreport.period import report_period
from tasks.opsreport.report import ops_markdown
from tasks.reporting import final_state, flow_run_linker, publish_summary, report_denial
from tradeops import clock
from tradeops.files import atomic_write_text


@flow(name="ops-report", **FAILURE_HOOKS)
def ops_report(environment: str = "default", period: str = "day") -> State:
    """Report what happened in `environment` today (`day`) or in the last seven days (`week`)."""
    env = load_environment(environment)
    span = report_period(period, clock.utcnow())
    try:
        require_permission(env, permission_for("ops-report"), "ops_report")
    except AccessDenied as exc:
        return report_denial("ops-report", env.name, env.store_url, f"Ops report {env.name}", str(exc))
    found = gather(env.store_url, env.name, span)
    markdown = ops_markdown(env.name, span, found, flow_run_linker())
    path = env.block.output_dir("reports", "ops") / f"{span.label}.md"
    atomic_write_text(path, markdown + "\n")
    result = {"period": span.label, "start": span.start.isoformat(), "end": span.end.isoformat(),
              "runs": len(found.runs), "failed": len(found.failures),
              "by_flow": {t.flow: {"runs": t.runs, "failed": t.failed} for t in found.tallies},
              "backups": len(found.backups), "drills": len(found.drills), "evaluations": len(found.evaluations),
              "incidents": len(found.incidents), "change_requests": len(found.changes),
              "alerts": dict(found.alerts), "report": str(path)}
    result = publish_summary("ops-report", env.name, env.store_url, markdown, result,
                             table=[{"flow": t.flow, "runs": t.runs, "failed": t.failed, "last_state": t.last_state}
                                    for t in found.tallies])
    return final_state(result, None)
