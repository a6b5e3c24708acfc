"""Prometheus metrics of an environment, read from its ops store: served by `tradeops metrics
serve`, pushed to a Pushgateway at the end of every flow run. The table of names is `names.py`."""

from tasks.metrics.collector import TradeopsCollector, registry_for
from tasks.metrics.names import METRICS, MetricSpec, exposed_names
from tasks.metrics.push import PushOutcome, push_environment_metrics, pushgateway_url

__all__ = [
    "METRICS", "MetricSpec", "PushOutcome", "TradeopsCollector", "exposed_names", "push_environment_metrics",
    "pushgateway_url", "registry_for",
]
