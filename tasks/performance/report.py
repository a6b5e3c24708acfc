"""The baselines report: anomalies first (runbook 001's response steps beside them), then every
operation's p50/p95/p99 with its change from the previous baseline."""

from __future__ import annotations

from tasks.performance.baselines import SIGMAS, Anomaly, Baseline, key
from tasks.reporting import markdown_table

RESPONSE = ("Runbook 001 response to a > 2 sigma deviation: check recent deployments, review infrastructure "
            "metrics, analyse slow query logs, consider a rollback if the degradation persists.")
SOURCE_TITLES = {"flow": "Flow runs", "task": "Task runs", "request": "Platform requests (request log)"}


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.1f}"


def _change(new: float, old: Baseline | None) -> str:
    if old is None or not old.p95:
        return "new"
    return f"{100 * (new - old.p95) / old.p95:+.0f}%"


def baselines_markdown(environment: str, window_text: str, baselines: list[Baseline], previous: dict[str, Baseline],
                       found: list[Anomaly], counts: dict[str, int], skipped: int) -> str:
    sections = [f"# Performance baselines {environment}: {window_text}",
                "Samples: " + ", ".join(f"{counts.get(s, 0)} {s} durations" for s in SOURCE_TITLES)
                + f"; {len(baselines)} operations with a baseline, {skipped} with too few samples."]
    if found:
        sections.append(f"## Anomalies (recent median > previous mean + {SIGMAS:g} sigma)\n\n" + markdown_table(
            ["source", "operation", "recent median ms", "recent samples", "baseline mean ms", "limit ms",
             "slow samples"],
            [(a.source, a.operation, _ms(a.recent_median), a.recent_samples, _ms(a.baseline_mean),
              _ms(a.baseline_limit), a.slow_runs) for a in found]) + "\n\n" + RESPONSE)
    else:
        sections.append("No anomaly: every operation's recent median is within 2 sigma of its previous baseline.")
    for source, title in SOURCE_TITLES.items():
        rows = [(b.operation, b.samples, _ms(b.p50), _ms(b.p95), _ms(b.p99), _ms(b.mean), _ms(b.stddev),
                 _change(b.p95, previous.get(key(b)))) for b in baselines if b.source == source]
        if rows:
            sections.append(f"## {title}\n\n" + markdown_table(
                ["operation", "samples", "p50 ms", "p95 ms", "p99 ms", "mean ms", "sigma ms", "p95 change"],
                sorted(rows, key=lambda r: r[0])))
    return "\n\n".join(sections)
