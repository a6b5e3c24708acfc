"""How every flow ends: a markdown summary artifact, the summary in the ops store, the metrics
pushed to a Pushgateway when one is configured, a final state.

A flow whose checks failed returns a Failed state that still carries its result (inside a
`FlowFailed`), so the CLI can print the result and the UI shows why.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.settings import get_current_settings
from prefect.states import Completed, Failed, State

from tradeops.files import atomic_write_text
from tradeops.store.records import current_flow_run_id, save_flow_summary

DENIED = "access_denied"  # the result key of a run its acting user may not make (the CLI exits 3)
STATUS_ICON = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ fail", "skip": "➖ skip"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def flow_run_linker() -> Callable[[str | None], str | None]:
    """flow_run_link with the settings read once, for many links."""
    ui = get_current_settings().ui_url
    base = f"{str(ui).rstrip('/')}/runs/flow-run/" if ui else "flow-run/"
    return lambda flow_run_id: f"{base}{flow_run_id}" if flow_run_id else None


def flow_run_link(flow_run_id: str | None) -> str | None:
    """Where an auditor opens a run's logs: the Prefect UI when one is configured, else the id."""
    return flow_run_linker()(flow_run_id) if flow_run_id else None


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@task(name="publish-summary")
def publish_summary(flow_name: str, environment: str, store_url: str, markdown: str,
                    result: dict[str, Any], failure: str | None = None,
                    table: list[dict[str, Any]] | None = None, reports_dir: str | None = None,
                    artifact_markdown: str | None = None) -> dict[str, Any]:
    """Publish the summary artifact(s) and report file, record the run; returns the result.
    ``artifact_markdown``: what the UI artifact shows when it differs from the report file (e.g.
    plots embedded as data URIs where the file links the PNGs beside it)."""
    if reports_dir:
        report = Path(reports_dir) / f"{flow_name}-{current_flow_run_id() or 'local'}.md"
        atomic_write_text(report, markdown + "\n")
        result = {**result, "report": str(report)}
    create_markdown_artifact(artifact_markdown or markdown, key=f"{flow_name}-summary",
                             description=f"{flow_name} summary")
    if table is not None:
        create_table_artifact(table, key=f"{flow_name}-results", description=f"{flow_name} results")
    state = "Failed" if failure else "Completed"
    save_flow_summary(store_url, flow_name, environment, state, failure or "", markdown, result)
    push_metrics(environment, store_url)
    return result


def push_metrics(environment: str, store_url: str) -> None:
    """Best effort, after the run is recorded (so its own outcome is in the push): a gateway that
    is down or refuses is a warning in the run log, never a failed flow."""
    from tasks.metrics.push import push_environment_metrics

    outcome = push_environment_metrics(environment, store_url)
    if outcome is not None and not outcome.pushed:
        get_run_logger().warning("metrics not pushed to the Pushgateway at %s: %s", outcome.gateway, outcome.error)


class FlowFailed(Exception, Mapping):
    """A Failed flow's result: the reason, carrying the flow's report as a read-only mapping.

    Prefect resolves a Failed state's data into the exception to raise wherever the run's result
    is asked for, as a worker's flow-run process does at its end; a plain dict there turns into a
    TypeError that hides the reason. Readers of the state's result still see the report's keys.
    """

    __hash__ = Exception.__hash__  # Mapping's __eq__ would make it unhashable

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = dict(result)

    def __reduce__(self):  # noqa: ANN204 - pickles with its report
        return type(self), (str(self), self.result)

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def __iter__(self):  # noqa: ANN204
        return iter(self.result)

    def __len__(self) -> int:
        return len(self.result)


def final_state(result: dict[str, Any], failure: str | None) -> State:
    """The flow's own final state: Failed with the reason when a check or target failed."""
    return Failed(message=failure, data=FlowFailed(failure, result)) if failure else Completed(data=result)


def report_denial(flow_name: str, environment: str, store_url: str, title: str, denial: str,
                  reports_dir: str | None = None) -> State:
    """How a privileged flow ends when its acting user lacks the permission (tasks/access.py
    audited the denial): Failed, touching nothing, its result carrying the denial under `DENIED`."""
    result = publish_summary(flow_name, environment, store_url, f"# {title}\n\n**Denied:** {denial}",
                             {DENIED: denial}, denial, reports_dir=reports_dir)
    return final_state(result, denial)
