"""Performance baselines (issue 19, runbook 001 "Performance Baseline Management"): p50/p95/p99
per operation over a rolling 30-day window, from Prefect flow and task run durations (``runs``)
and the platform's request log (``requests``); computed in one vectorised pass (``percentiles``),
stored in the ops store (``store``: what health checks read) and checked for >2 sigma anomalies."""
