"""`tradeops experiment ...`: the lifecycle against the role table, audited, and ad hoc evaluation.

Runbook 000's users (alice: strategy_developer, bob: senior_trader, admin: system_administrator)
and a compliance officer act on a real ops store; denials exit 3 and are audited.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlmodel import select

from tasks.access import ROLES
from conftest import apply_as_own_environment
from tradeops.cli import main
from tradeops.store import AuditEntry, Experiment, session_for

EXPERIMENT_PERMISSIONS = ("experiment.create", "experiment.read", "experiment.update", "experiment.start",
                          "experiment.stop")
# runbook 000 "Access Control Management": who may do what (a test-side copy, written from the runbook)
RUNBOOK_GRANTS = {
    "strategy_developer": {"experiment.create", "experiment.read", "experiment.update"},
    "senior_trader": {"experiment.create", "experiment.read", "experiment.update", "experiment.start",
                      "experiment.stop"},
    "system_administrator": set(EXPERIMENT_PERMISSIONS),
    "compliance_officer": {"experiment.read"},
}


@pytest.mark.parametrize("role", sorted(RUNBOOK_GRANTS))
@pytest.mark.parametrize("permission", EXPERIMENT_PERMISSIONS)
def test_role_table_matches_the_runbook(role, permission):
    assert ROLES[role].allows(permission) == (permission in RUNBOOK_GRANTS[role])


@pytest.fixture
def experiment_env(pg_sandbox, tmp_path, monkeypatch):
    platform, config = pg_sandbox
    name, store = apply_as_own_environment(config, tmp_path, "exp")
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    return name, store


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["experiment", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def audits(store: str, operation: str) -> list[AuditEntry]:
    with session_for(store) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.operation == operation)).all())


def test_lifecycle_by_role_with_limits_and_audit(experiment_env, capsys):
    name, store = experiment_env
    # alice may create within her $1M and 90 days ...
    code, out, _ = run(capsys, "create", "--user", "alice", "--strategy", "momentum_alpha", "--param",
                       "threshold=0.003", "--capital", "0.5%", "--name", "mom-threshold", "--json")
    assert code == 0
    created = json.loads(out)
    assert (created["status"], created["split"], created["capital_usd"]) == ("draft", "90/10", 500_000)
    # ... but not more capital, not longer, and she may not start it
    code, _, err = run(capsys, "create", "--user", "alice", "--strategy", "momentum_alpha", "--param", "x=1",
                       "--capital", "5%")
    assert code == 3 and "at most 1,000,000 USD, not 5,000,000" in err
    code, _, err = run(capsys, "create", "--user", "alice", "--strategy", "momentum_alpha", "--param", "x=1",
                       "--capital", "100000", "--duration-days", "120")
    assert code == 3 and "at most 90 days" in err
    code, _, err = run(capsys, "start", "mom-threshold", "--user", "alice")
    assert code == 3 and "lacks permission experiment.start" in err
    # a compliance officer reads, and creates nothing; someone without a role does nothing
    assert run(capsys, "list", "--user", "carol")[0] == 0
    code, _, err = run(capsys, "create", "--user", "carol", "--strategy", "s", "--param", "x=1", "--capital", "1000")
    assert code == 3 and "lacks permission experiment.create" in err
    code, _, err = run(capsys, "list", "--user", "mallory")
    assert code == 3 and "has no role" in err
    # bob starts and concludes it
    code, out, _ = run(capsys, "start", str(created["id"]), "--user", "bob", "--json")
    assert code == 0 and json.loads(out)["status"] == "running"
    code, out, _ = run(capsys, "conclude", "mom-threshold", "--action", "promote", "--note", "clear winner",
                       "--user", "bob", "--json")
    assert code == 0 and (json.loads(out)["status"], json.loads(out)["conclusion"]) == ("concluded", "promote")
    code, out, _ = run(capsys, "show", "mom-threshold", "--user", "carol", "--json")
    assert json.loads(out)["concluded_by"] == "bob"

    # every change and every denial left an audit entry naming the user
    assert [(a.user, a.success) for a in audits(store, "experiment_create")] == \
        [("alice", True), ("alice", False), ("alice", False), ("carol", False)]
    assert [(a.user, a.success) for a in audits(store, "experiment_start")] == [("alice", False), ("bob", True)]
    assert [(a.user, a.success) for a in audits(store, "experiment_conclude")] == [("bob", True)]
    denied = json.loads(audits(store, "experiment_start")[0].details)
    assert "experiment.start" in denied["denied"] and denied["exit_code"] == 3
    over_duration = json.loads(audits(store, "experiment_create")[2].details)
    assert "at most 90 days" in over_duration["denied"] and over_duration["request"]["duration_days"] == 120


def test_bad_input_exits_2_and_capital_refusals_are_audited(experiment_env, capsys):
    name, store = experiment_env
    base = ["create", "--user", "admin", "--strategy", "s", "--param", "x=1"]
    code, _, err = run(capsys, *base, "--capital", "12%")
    assert code == 2 and "exceeds the 10" in err  # runbook 000: 10% per experiment
    code, _, err = run(capsys, *base, "--capital", "1%", "--split", "80/30")
    assert code == 2 and "80/30" in err
    code, _, err = run(capsys, *base, "--capital", "lots")
    assert code == 2 and "--capital 'lots'" in err
    code, _, err = run(capsys, "show", "4242", "--user", "admin")
    assert code == 2 and "no experiment '4242'" in err
    with session_for(store) as session:
        assert session.exec(select(Experiment)).all() == []
    # 5% per strategy version: two 5% experiments at 50/50 give each arm 2.5% + 2.5%; a third goes over
    for i in (1, 2):
        assert run(capsys, *base, "--capital", "5%", "--split", "50/50", "--name", f"s-{i}")[0] == 0
    code, _, err = run(capsys, *base, "--capital", "2%", "--split", "50/50", "--name", "s-3")
    assert code == 2 and "single-strategy allocation 6% of total capital exceeds the 5% limit" in err
    # the two capital refusals are on record with what was asked; the malformed input is not
    refused = [json.loads(a.details) for a in audits(store, "experiment_create") if not a.success]
    assert [(r["exit_code"], r["request"]["capital"], r["request"]["name"]) for r in refused] == \
        [(2, "12%", None), (2, "2%", "s-3")]
    assert "exceeds the 10" in refused[0]["refused"] and "exceeds the 5% limit" in refused[1]["refused"]
    assert [a.success for a in audits(store, "experiment_create")] == [False, True, True, False]


def trades_file(tmp_path, control: np.ndarray, variant: np.ndarray, suffix: str = ".csv"):
    ts = pd.date_range("2026-11-01", periods=len(control) + len(variant), freq="min", tz="UTC")
    frame = pd.DataFrame({"trade_id": np.arange(len(control) + len(variant)),
                          "group": ["control"] * len(control) + ["variant"] * len(variant),
                          "pnl": np.concatenate([control, variant]), "ts": ts})
    path = tmp_path / f"trades{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_evaluate_a_trades_file(tmp_path, capsys, suffix):
    rng = np.random.default_rng(11)
    control, variant = rng.normal(4.0, 30.0, 900), rng.normal(10.0, 30.0, 300)
    path = trades_file(tmp_path, control, variant, suffix)
    code = main(["experiment", "evaluate", "--trades", str(path), "--split", "75/25", "--fixed-horizon", "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"decision", "rule", "p_value", "test", "lift", "ci", "cohen_d", "n_control", "n_variant",
            "srm_p_value"} <= set(answer)
    assert (answer["n_control"], answer["n_variant"]) == (900, 300)
    welch = stats.ttest_ind(variant, control, equal_var=False)
    assert answer["p_value"] == pytest.approx(welch.pvalue, rel=1e-9, abs=1e-12)
    assert answer["srm_p_value"] == pytest.approx(stats.chisquare([900, 300], [900, 300]).pvalue, abs=1e-12)
    assert "fixed-horizon" in answer["test"]


@pytest.mark.parametrize("damage, expected", [
    (lambda f: f.assign(pnl=f["pnl"].where(f.index != 3, np.nan)), "expect_column_values_to_not_be_null on pnl"),
    (lambda f: f.assign(pnl=f["pnl"].where(f.index != 3, np.inf)), "expect_column_values_to_be_between on pnl"),
    (lambda f: f.assign(pnl=f["pnl"].astype(object).where(f.index != 3, "12,5")), "on pnl"),
    (lambda f: f.assign(group=f["group"].where(f.index != 3, "treatment")), "expect_column_values_to_be_in_set on group"),
    (lambda f: f.assign(trade_id=f["trade_id"].where(f.index != 3, 0)), "expect_column_values_to_be_unique on trade_id"),
    (lambda f: f.loc[f["group"] == "control"], "variant"),  # an empty group
])
def test_bad_trades_files_exit_2_naming_the_problem(tmp_path, capsys, damage, expected):
    rng = np.random.default_rng(3)
    path = trades_file(tmp_path, rng.normal(0, 1, 200), rng.normal(0, 1, 200))
    damage(pd.read_csv(path)).to_csv(path, index=False)
    code = main(["experiment", "evaluate", "--trades", str(path), "--split", "50/50"])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err


def test_evaluate_usage_errors(tmp_path, capsys):
    assert main(["experiment", "evaluate", "--trades", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = trades_file(tmp_path, np.zeros(5) + 1, np.zeros(5) + 2)
    assert main(["experiment", "evaluate", "--trades", str(path), "--split", "80/30"]) == 2
    assert "80/30" in capsys.readouterr().err
