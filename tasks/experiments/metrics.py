"""Prometheus metrics of the experiment evaluation, named as in runbook 000 ("A/B Testing
Operations": `experiments_active_total`, `statistical_analysis_duration_seconds`,
`experiment_statistical_errors_total`), so its alert rules work unchanged.

A flow run is short-lived, so the metrics go to a file in the node_exporter textfile collector
format (`<data_dir>/metrics/tradeops_experiments.prom`, written atomically by prometheus_client);
point node_exporter's `--collector.textfile.directory` at that folder.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile

METRICS_FILE = "tradeops_experiments.prom"


class ExperimentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active = Gauge("experiments_active_total", "Number of active A/B experiments",
                            ["environment"], registry=self.registry)
        self.analysis_seconds = Histogram("statistical_analysis_duration_seconds",
                                          "Time for statistical analysis completion", ["environment"],
                                          registry=self.registry)
        self.errors = Counter("experiment_statistical_errors", "Statistical analyses that could not complete",
                              ["environment", "reason"], registry=self.registry)
        self.decisions = Gauge("experiment_decision_info", "The latest decision per experiment (value 1)",
                               ["environment", "experiment", "decision"], registry=self.registry)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / METRICS_FILE
        write_to_textfile(str(path), self.registry)
        return path
