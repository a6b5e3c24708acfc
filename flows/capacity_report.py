"""capacity-report: growth of databases, their largest tables, disks, repositories and backup
sets, and when each disk fills (runbooks 002 "Capacity Planning", monthly; 004 quarterly "Review
growth trends"). Monthly on the 1st at 08:00 UTC (90 days of history), quarterly at 08:30 (a year).

1. Sizes come from the ops store (`size_sample`): every health-check and backup run records them
   (tasks/capacity/sizes.py), so the report needs no access to the platform itself. This run
   records one more set of sizes first, so the report always ends at now, then compacts the
   history (tasks/capacity/history.py: older samples thinned as the forecast thins them).
2. Per series, a Theil-Sen trend with its 95% interval; for disks, days until 80% and 90% full.
3. Recommendations (runbook 002): over 80% used, scale storage; reaching 80% within the horizon,
   plan it; over 90%, or reaching it within 7 days, critical; the fastest-growing tables.
4. Report: recommendations, plots (disk used with the trend run forward; database and table
   sizes), a table per kind. Audited (`capacity_report`). Failed when a recommendation is critical.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from prefect import flow
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.capacity.forecast import SeriesTrend, fit_all, load_series
from tasks.capacity.history import compact_sizes_task
from tasks.capacity.plots import plot_disks, plot_sizes
from tasks.capacity.report import capacity_markdown, failure_of, recommendations
from tasks.capacity.sizes import record_sizes_task
from tasks.environment import LoadedEnvironment, load_environment
from tasks.experiments.report import plots_markdown
from tasks.reporting import final_state, publish_summary, report_denial
from tradeops import clock
from tradeops.store.records import append_audit, current_flow_run_id


@flow(name="capacity-report", **FAILURE_HOOKS)
def capacity_report(environment: str = "default", window_days: int = 90, horizon_days: int = 90) -> State:
    """Trend every recorded size of `environment` over `window_days`; plan `horizon_days` ahead."""
    env = load_environment(environment)
    title = f"Capacity report {env.name}"
    try:
        actor = require_permission(env, permission_for("capacity-report"), "capacity_report")
    except AccessDenied as exc:
        return report_denial("capacity-report", env.name, env.store_url, title, str(exc),
                             reports_dir=str(env.block.output_dir("reports")))
    record_sizes_task(env, "capacity-report")
    now = clock.utcnow()
    compacted = compact_sizes_task(env, now)
    series = load_series(env.store_url, env.name, now - timedelta(days=window_days), now)
    trends = fit_all(series)
    recommended = recommendations(trends, horizon_days)
    folder = env.block.output_dir("reports", f"capacity-{current_flow_run_id() or 'local'}")
    plots = draw(trends, series, horizon_days, folder)
    failure = failure_of(recommended)
    append_audit(env.store_url, "capacity_report", actor.user, success=failure is None,
                 details={"window_days": window_days, "horizon_days": horizon_days, "series": len(trends),
                          "samples_compacted": compacted,
                          "recommendations": [f"{r.severity}: {r.series}: {r.text}" for r in recommended]})
    markdown = capacity_markdown(env.name, window_days, horizon_days, trends, recommended,
                                 plots_markdown(plots, embed=False))
    artifact = capacity_markdown(env.name, window_days, horizon_days, trends, recommended,
                                 plots_markdown(plots, embed=True))
    result = {"window_days": window_days, "horizon_days": horizon_days, "samples_compacted": compacted,
              "trends": [t.as_dict() for t in trends],
              "recommendations": [asdict(r) for r in recommended], "plots": [str(p) for p in plots]}
    result = publish_summary("capacity-report", env.name, env.store_url, markdown, result, failure,
                             table=[{"kind": t.kind, "series": t.series, "bytes": t.last_bytes,
                                     "slope_bytes_per_day": t.slope_bytes_per_day} for t in trends],
                             reports_dir=str(folder), artifact_markdown=artifact)
    return final_state(result, failure)


def draw(trends: list[SeriesTrend], series: dict, horizon_days: int, folder: Path) -> list[Path]:
    """The disk plot, and one plot of databases and their largest tables, when there is data."""
    plots = []
    disks = [t for t in trends if t.kind == "disk" and t.capacity_bytes]
    if disks:
        plots.append(plot_disks(disks, series, horizon_days, folder / "capacity-disks.png"))
    data = [t for t in trends if t.kind in ("database", "table")]
    if data:
        plots.append(plot_sizes(data, series, "Databases and their largest tables", folder / "capacity-databases.png"))
    return plots
