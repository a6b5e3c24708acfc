"""ops-report: its counts are the runs made, failures first with their reasons, the file written
whole; the weekly report covers seven days."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import apply_as_own_environment, run_flow
from flows.capacity_report import capacity_report
from flows.health_check import health_check
from flows.ops_report import ops_report
from tasks.opsreport.period import report_period
from tradeops import clock
from tradeops.errors import UsageError
from tradeops.store import Incident, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


@pytest.fixture
def sandbox_env(pg_sandbox, tmp_path):
    platform, config = pg_sandbox
    return apply_as_own_environment(config, tmp_path, "ops")


def test_the_report_counts_the_runs_made(sandbox_env):
    name, store = sandbox_env
    made = [("health-check", run_flow(health_check, environment=name)[0]) for _ in range(2)]
    made.append(("capacity-report", run_flow(capacity_report, environment=name)[0]))
    now = clock.utcnow()
    with session_for(store) as session:
        session.add(Incident(environment=name, condition_key="disk:/data", title="disk filling", severity="P2",
                             opened_by="svc-prefect", response_due_at=now, resolution_due_at=now))
        session.commit()

    state, result = run_flow(ops_report, environment=name, period="day")
    assert state.is_completed(), state.message
    runs, failed = Counter(flow for flow, _ in made), Counter(flow for flow, s in made if not s.is_completed())
    assert result["by_flow"] == {flow: {"runs": runs[flow], "failed": failed[flow]} for flow in runs}
    assert (result["runs"], result["failed"]) == (len(made), sum(failed.values()))
    assert result["incidents"] == 1
    report = Path(result["report"])
    assert report.name == f"daily-{now:%Y-%m-%d}.md" and report.parent.name == "ops"
    text = report.read_text()
    assert text.endswith("\n") and "## Failed runs" in text and "disk filling" in text
    assert text.index("## Failed runs") < text.index("## What ran")  # failures first
    for _, s in made:
        if not s.is_completed():
            assert str(s.state_details.flow_run_id)[:8] in text  # each failure links its run
    assert not list(report.parent.glob("*.tmp*"))  # nothing half-written left beside it

    state, weekly = run_flow(ops_report, environment=name, period="week")
    assert state.is_completed() and weekly["by_flow"] == result["by_flow"]  # plus this morning's daily report: not counted
    assert Path(weekly["report"]).name.startswith("weekly-")


def test_periods():
    now = clock.utcnow().replace(hour=23, minute=30)
    day = report_period("day", now)
    assert (day.start, day.end) == (now.replace(hour=0, minute=0, second=0, microsecond=0), now)
    assert report_period("week", now).start == now - timedelta(days=7)
    with pytest.raises(UsageError, match="period"):
        report_period("month", now)
