"""correlation-matrix: the matrix equals numpy.corrcoef; runbook 001's checks refuse a non-PSD
matrix, a too-short series and a drift over 15%; versions in git, promotion, refusal and rollback
audited, on the sandbox's trades."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from conftest import apply_as_own_environment, run_flow
from flows.correlation_matrix import correlation_matrix_flow
from blocks import TradeopsEnvironment
from tasks.correlation.matrix import CorrelationMatrix, correlation_matrix, validate
from tasks.correlation.versions import commit_matrix, history, live_version, open_matrix_repository
from tradeops.store import AuditEntry, session_for

pytestmark = pytest.mark.prefect  # runs flows / saves blocks: the session Prefect server (tests/conftest.py)


def returns_frame(hours: int, columns: int, seed: int = 19) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(columns, columns))  # correlated columns
    data = rng.normal(size=(hours, columns)) @ mixing
    index = pd.date_range("2026-11-01", periods=hours, freq="h", tz="UTC")
    return pd.DataFrame(data, index=index, columns=[f"s{i}" for i in range(columns)])


def test_the_matrix_equals_numpy_corrcoef_and_passes_every_check():
    frame = returns_frame(500, 5)
    matrix = correlation_matrix(frame)
    np.testing.assert_allclose(matrix.values, np.corrcoef(frame.to_numpy().T), rtol=0, atol=1e-12)
    assert (matrix.points == 500).all() and matrix.strategies == list(frame.columns)
    assert all(check.passed for check in validate(matrix, None))


def test_a_non_psd_matrix_is_refused():
    values = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])  # symmetric, in range, not PSD
    assert np.linalg.eigvalsh(values).min() < 0
    candidate = CorrelationMatrix(["a", "b", "c"], values, np.full((3, 3), 500))
    failed = {c.name for c in validate(candidate, None) if not c.passed}
    assert failed == {"positive semi-definite"}


def test_a_too_short_series_is_excluded_and_a_short_pair_refused():
    frame = returns_frame(300, 3)
    frame.iloc[60:, 2] = np.nan  # s2: 60 hourly returns
    matrix = correlation_matrix(frame)
    assert matrix.strategies == ["s0", "s1"] and "60 hourly returns" in matrix.excluded["s2"]
    sparse = returns_frame(300, 3)
    sparse.iloc[:150, 0] = np.nan  # each has 150 or more, but s0 and s1 overlap ...
    sparse.iloc[150:250, 1] = np.nan  # ... only 50 hours
    failed = {c.name: c.detail for c in validate(correlation_matrix(sparse), None) if not c.passed}
    assert "s0/s1 (50)" in failed["≥ 100 points per pair"]  # (pairwise windows this different may break PSD too)


def test_drift_over_15_percent_is_refused():
    live = correlation_matrix(returns_frame(500, 3))
    moved = CorrelationMatrix(live.strategies, live.values.copy(), live.points)
    moved.values[0, 1] = moved.values[1, 0] = live.values[0, 1] - 0.2 if live.values[0, 1] > -0.75 else 0.0
    [drift] = [c for c in validate(moved, live) if c.name.startswith("drift")]
    assert not drift.passed and "s0/s1" in drift.detail


@pytest.fixture
def sandbox_env(pg_sandbox, tmp_path):
    platform, config = pg_sandbox
    return apply_as_own_environment(config, tmp_path, "corr")


def audit(store: str, operation: str) -> list[AuditEntry]:
    with session_for(store) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.operation == operation)).all())


def test_update_promote_refuse_and_roll_back_on_the_sandbox(sandbox_env):
    name, store = sandbox_env
    state, first = run_flow(correlation_matrix_flow, environment=name)
    assert state.is_completed(), state.message
    assert first["decision"] == "promoted" and len(first["strategies"]) >= 2
    assert "regime_switch" in first["excluded"]  # the sandbox's too-few-trades strategy: 80 trades in 21 days
    repo = open_matrix_repository(TradeopsEnvironment.load(name).output_dir("correlation-matrix"))
    live = live_version(repo)
    assert live.commit == first["version"]
    on_disk = json.loads(open(f"{repo.workdir}/matrix.json").read())
    assert on_disk["strategies"] == first["strategies"] and np.allclose(on_disk["matrix"], first["matrix"])

    state, again = run_flow(correlation_matrix_flow, environment=name)
    assert state.is_completed() and again["decision"].startswith("unchanged") and len(history(repo)) == 1

    # a live matrix far from the data: the recomputed one drifts over 15% and is refused
    far = CorrelationMatrix(live.matrix.strategies, np.eye(len(live.matrix.strategies)) * 0.5 + 0.5,
                            live.matrix.points)
    planted = commit_matrix(repo, far, {}, "planted: all pairs at 0.5", "admin")
    state, refused = run_flow(correlation_matrix_flow, environment=name)
    assert state.is_failed() and "drift" in state.message and refused["decision"] == "refused"
    assert live_version(repo).commit == planted.commit  # the live matrix stayed
    assert [e.success for e in audit(store, "correlation_matrix_refused")] == [False]

    state, rolled = run_flow(correlation_matrix_flow, environment=name, action="rollback")
    assert state.is_completed(), state.message
    now_live = live_version(repo)
    assert now_live.meta["restores"] == first["version"]
    np.testing.assert_allclose(now_live.matrix.values, np.array(first["matrix"]))
    [entry] = audit(store, "correlation_matrix_rollback")
    assert json.loads(entry.details)["replaced"] == planted.commit and entry.repository_hash == now_live.commit
    assert len(audit(store, "correlation_matrix_promote")) == 2  # the promotion and the unchanged run
