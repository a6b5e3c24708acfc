"""One environment's metrics, read from its ops store at each collection: a prometheus_client
custom collector, so `tradeops metrics serve` and the Pushgateway push show the same numbers and
the store stays the one source of truth.

Each part reads its own rows; a part that cannot (the store is down, a row does not parse) is
logged and reported as `tradeops_metrics_collect_success{part=...} 0`, and the others still show.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from tasks.metrics.alerts import alert_families
from tasks.metrics.audit import AuditTimings
from tasks.metrics.backups import backup_families
from tasks.metrics.certificates import certificate_families
from tasks.metrics.drills import drill_families
from tasks.metrics.experiments import EvaluationTotals, active_families
from tasks.metrics.families import family
from tasks.metrics.flow_runs import flow_run_families
from tasks.metrics.health import health_families
from tasks.metrics.incidents import incident_families
from tasks.metrics.maintenance import maintenance_families
from tasks.metrics.names import METRICS
from tasks.metrics.performance import performance_families

log = logging.getLogger("tradeops.metrics")


class TradeopsCollector(Collector):
    def __init__(self, environment: str, store_url: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.environment, self.store_url, self.clock = environment, store_url, clock
        self.audit = AuditTimings()
        self.evaluations = EvaluationTotals()
        self._lock = threading.Lock()  # concurrent scrapes must not fold the same new rows in twice

    def parts(self, now: datetime) -> dict[str, Callable[[], Iterator[Metric]]]:
        env, url = self.environment, self.store_url
        return {
            "audit": lambda: self.audit.read(url, env),
            "experiments": lambda: [*active_families(url, env), *self.evaluations.read(url, env)],
            "backups": lambda: backup_families(url, env, now),
            "drills": lambda: drill_families(url, env),
            "certificates": lambda: certificate_families(url, env, now),
            "maintenance": lambda: maintenance_families(url, env),
            "flow_runs": lambda: flow_run_families(url, env),
            "health": lambda: health_families(url, env),
            "alerts": lambda: alert_families(url, env),
            "incidents": lambda: incident_families(url, env),
            "performance": lambda: performance_families(url, env),
        }

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            return iter(self._collect_all())

    def _collect_all(self) -> list[Metric]:
        found_all, success = [], family("tradeops_metrics_collect_success")
        for part, read in self.parts(self.clock()).items():
            try:
                found = list(read())  # all of a part or none of it
            except Exception as exc:  # noqa: BLE001 - one unreadable part must not hide the others
                log.warning("metrics: %s of environment %r could not be read: %s: %s", part, self.environment,
                            type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
                success.add_metric([self.environment, part], 0.0)
                continue
            success.add_metric([self.environment, part], 1.0)
            found_all += found
        return [*found_all, success]

    def describe(self) -> Iterator[Metric]:
        """The names, without reading the store (the registry asks when the collector is registered)."""
        return (family(name) for name in METRICS)


def registry_for(environment: str, store_url: str) -> CollectorRegistry:
    """A registry holding only this environment's tradeops metrics (no process/GC metrics)."""
    registry = CollectorRegistry()
    registry.register(TradeopsCollector(environment, store_url))
    return registry
