"""The experiment-evaluation run's own Prometheus metrics, named as in runbook 000 ("A/B Testing
Operations": `experiments_active_total`, `statistical_analysis_duration_seconds`,
`experiment_statistical_errors_total`), so its alert rules work unchanged.

This is a snapshot of one run, in the node_exporter textfile collector format
(`<data_dir>/metrics/tradeops_experiments.prom`, written atomically by prometheus_client), for
sites that collect textfiles. `tradeops metrics serve` and the Pushgateway push (tasks/metrics)
export the same names, labels and buckets as running totals over every run; scrape one or the other.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile

from tasks.metrics.names import METRICS

METRICS_FILE = "tradeops_experiments.prom"


def _spec(name: str) -> dict:
    spec = METRICS[name]
    return {"name": spec.name, "documentation": spec.help}


class ExperimentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active = Gauge(**_spec("experiments_active_total"), labelnames=["environment"], registry=self.registry)
        self.analysis_seconds = Histogram(**_spec("statistical_analysis_duration_seconds"), labelnames=["environment"],
                                          buckets=METRICS["statistical_analysis_duration_seconds"].buckets,
                                          registry=self.registry)
        self.errors = Counter(**_spec("experiment_statistical_errors_total"), labelnames=["environment", "reason"],
                              registry=self.registry)
        self.decisions = Gauge("experiment_decision_info", "The latest decision per experiment (value 1)",
                               ["environment", "experiment", "decision"], registry=self.registry)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / METRICS_FILE
        write_to_textfile(str(path), self.registry)
        return path
