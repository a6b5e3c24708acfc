"""correlation-matrix: recompute, validate, version and promote the strategy return correlation
matrix, or roll it back (runbook 001 "Correlation Matrix Updates"). Weekly, Monday 00:30 UTC (the
runbook gives no schedule: after the weekly performance baselines, on the same 30-day window).

`action=update`:
1. Trades of the last `window_days` (30) from the experiments database; each strategy's PnL summed
   per hour (UTC); a strategy with fewer than `min_points` (100) hourly returns is excluded, named.
2. Pearson correlation of every pair over the hours both traded.
3. Validation (runbook 001): every value defined, symmetric, unit diagonal, in [-1, 1], positive
   semi-definite, at least 100 points per pair, no pair moved more than `max_drift` (0.15) from the
   live matrix.
4. Promote: a new commit of `matrix.json` in the matrix repository (`<data_dir>/correlation-matrix`,
   the live matrix at HEAD); an unchanged matrix is not committed again. Refuse: the live matrix
   stays, the run fails naming the checks. Pairs with |correlation| >= `flag_above` (0.7) are flagged.
`action=rollback`: the version before the live one is committed again (runbook 001 `--rollback`).
Every promotion, refusal and rollback is audited. Report: decision, checks, flagged pairs, matrix,
heatmap.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from prefect import flow
from prefect.states import State

from flows.hooks import FAILURE_HOOKS
from flows.registry import permission_for
from tasks.access import AccessDenied, require_permission
from tasks.correlation.matrix import FLAG_ABOVE, MAX_DRIFT, MIN_POINTS, correlation_matrix, flagged_pairs, validate
from tasks.correlation.plots import plot_heatmap
from tasks.correlation.report import correlation_markdown
from tasks.correlation.returns import hourly_returns, strategy_trades
from tasks.correlation.versions import commit_matrix, live_version, open_matrix_repository, rollback_matrix
from tasks.environment import LoadedEnvironment, load_environment
from tasks.experiments.report import plots_markdown
from tasks.reporting import final_state, publish_summary, report_denial
from tradeops import clock
from tradeops.errors import UsageError
from tradeops.store.records import append_audit, current_flow_run_id

ACTIONS = ("update", "rollback")


@flow(name="correlation-matrix", **FAILURE_HOOKS)
def correlation_matrix_flow(environment: str = "default", action: str = "update", window_days: int = 30,
                            min_points: int = MIN_POINTS, max_drift: float = MAX_DRIFT,
                            flag_above: float = FLAG_ABOVE) -> State:
    """Update (recompute, validate, promote or refuse) or roll back the live correlation matrix."""
    if action not in ACTIONS:
        raise UsageError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    env = load_environment(environment)
    title = f"Correlation matrix {env.name}"
    try:
        actor = require_permission(env, permission_for("correlation-matrix"), f"correlation_matrix_{action}")
    except AccessDenied as exc:
        return report_denial("correlation-matrix", env.name, env.store_url, title, str(exc))
    repo = open_matrix_repository(env.block.output_dir("correlation-matrix"))
    if action == "rollback":
        return roll_back(env, repo, actor.user, title, flag_above)
    database = env.block.experiments_database()
    if database is None:
        raise UsageError("correlation-matrix: no experiments database ([experiments] database) holds the trades")
    end = clock.utcnow()
    start = end - timedelta(days=window_days)
    candidate = correlation_matrix(hourly_returns(strategy_trades(database.url.get_secret_value(), start, end)),
                                   min_points)
    live = live_version(repo)
    checks = validate(candidate, live.matrix if live else None, min_points, max_drift)
    failed = [c for c in checks if not c.passed]
    meta = {"window_start": start.isoformat(), "window_end": end.isoformat(), "flow_run_id": current_flow_run_id(),
            "min_points": min_points}
    version, decision = (live.commit if live else None), "refused"
    if not failed:
        unchanged = live is not None and same_matrix(live.matrix, candidate)
        if unchanged:
            decision = "unchanged (the live matrix already is this one)"
        else:
            promoted = commit_matrix(repo, candidate, meta, f"promote: {len(candidate.strategies)} strategies, "
                                     f"{start:%Y-%m-%d} to {end:%Y-%m-%d}", actor.user)
            version, decision = promoted.commit, "promoted"
    failure = ("refused, the live matrix stays: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
               if failed else None)
    append_audit(env.store_url, "correlation_matrix_promote" if not failed else "correlation_matrix_refused",
                 actor.user, success=not failed, repository_hash=version,
                 details={"decision": decision, "strategies": candidate.strategies, "excluded": candidate.excluded,
                          "checks": {c.name: c.detail for c in checks}, "failed": [c.name for c in failed],
                          "window_start": meta["window_start"], "window_end": meta["window_end"]})
    return report(env, title, decision, candidate, checks, flag_above, version, failure)


def same_matrix(a, b) -> bool:  # noqa: ANN001 - two CorrelationMatrix
    return a.strategies == b.strategies and np.allclose(a.values, b.values, atol=1e-12, equal_nan=True) \
        and np.array_equal(a.points, b.points)


def roll_back(env: LoadedEnvironment, repo, user: str, title: str, flag_above: float) -> State:  # noqa: ANN001
    was, now = rollback_matrix(repo, user)
    append_audit(env.store_url, "correlation_matrix_rollback", user, repository_hash=now.commit,
                 details={"replaced": was.commit, "restored": now.meta.get("restores"), "commit": now.commit})
    return report(env, title, f"rolled back to {now.meta.get('restores', '')[:12]} (replaced {was.commit[:12]})",
                  now.matrix, [], flag_above, now.commit, None)


def report(env: LoadedEnvironment, title: str, decision: str, matrix, checks: list, flag_above: float,  # noqa: ANN001
           version: str | None, failure: str | None) -> State:
    folder = env.block.output_dir("reports", f"correlation-{current_flow_run_id() or 'local'}")
    plots = [plot_heatmap(matrix, f"{title}: {decision}", folder / "correlation-heatmap.png")] \
        if len(matrix.strategies) >= 2 else []
    sections = [correlation_markdown(title, decision, matrix, checks, flag_above, version, plots_markdown(p, embed))
                for p, embed in ((plots, False), (plots, True))]
    result = {"decision": decision, "version": version, "strategies": matrix.strategies,
              "matrix": matrix.values.tolist(), "points": matrix.points.tolist(), "excluded": matrix.excluded,
              "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks],
              "flagged": [list(p) for p in flagged_pairs(matrix, flag_above)], "plots": [str(p) for p in plots]}
    result = publish_summary("correlation-matrix", env.name, env.store_url, sections[0], result, failure,
                             reports_dir=str(folder), artifact_markdown=sections[1])
    return final_state(result, failure)
