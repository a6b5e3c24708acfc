"""`tradeops experiment ...`: the lifecycle against the role table, audited, and ad hoc evaluation.

Runbook 000's users (alice: strategy_developer, bob: senior_trader, admin: system_administrator)
and a compliance officer act on a real ops store; denials exit 3 and are audited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pygit2
import pytest
from scipy import stats
from sqlmodel import select

from tasks.access import ROLES
from conftest import apply_as_own_environment
from tasks.experiments.lifecycle import record_evaluation
from tasks.experiments.statistics import evaluate_experiment
from tradeops.cli.main import main
from tradeops.cli.sandbox_setup import build_sandbox
from tradeops.store import AuditEntry, Experiment, ExperimentEvaluation, session_for
from tradeops.store.identity import os_login

ROOT = Path(__file__).resolve().parents[1]

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
def experiment_env(prefect_harness, pg_sandbox, tmp_path, monkeypatch):
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
    # bob starts it; promoting needs an evaluation that says so: there is none, so it is refused (and audited)
    code, out, _ = run(capsys, "start", str(created["id"]), "--user", "bob", "--json")
    assert code == 0 and json.loads(out)["status"] == "running"
    code, _, err = run(capsys, "conclude", "mom-threshold", "--action", "promote", "--note", "clear winner",
                       "--user", "bob")
    assert code == 3 and "refused: experiment 'mom-threshold' has no evaluation on record" in err
    code, out, _ = run(capsys, "conclude", "mom-threshold", "--action", "rollback", "--note", "no evidence",
                       "--user", "bob", "--json")
    assert code == 0 and (json.loads(out)["status"], json.loads(out)["conclusion"]) == ("concluded", "rollback")
    code, out, _ = run(capsys, "show", "mom-threshold", "--user", "carol", "--json")
    assert json.loads(out)["concluded_by"] == "bob"

    # every change and every denial left an audit entry naming the user
    assert [(a.user, a.success) for a in audits(store, "experiment_create")] == \
        [("alice", True), ("alice", False), ("alice", False), ("carol", False)]
    assert [(a.user, a.success) for a in audits(store, "experiment_start")] == [("alice", False), ("bob", True)]
    assert [(a.user, a.success) for a in audits(store, "experiment_conclude")] == [("bob", False), ("bob", True)]
    denied = json.loads(audits(store, "experiment_start")[0].details)
    assert "experiment.start" in denied["denied"] and denied["exit_code"] == 3
    over_duration = json.loads(audits(store, "experiment_create")[2].details)
    assert "at most 90 days" in over_duration["denied"] and over_duration["request"]["duration_days"] == 120


def test_bad_input_exits_2_and_capital_refusals_are_audited(experiment_env, capsys):
    name, store = experiment_env
    code, _, err = run(capsys, "create", "--user", "admin", "--strategy", "no_such_strategy", "--param", "x=1",
                       "--capital", "1%")
    assert code == 2 and "no strategy repository named 'no_such_strategy'" in err and "momentum_alpha" in err
    code, _, err = run(capsys, "create", "--user", "admin", "--strategy", "momentum_alpha", "--version", "7.7.7",
                       "--param", "x=1", "--capital", "1%")
    assert code == 2 and "no version '7.7.7'" in err
    base = ["create", "--user", "admin", "--strategy", "mean_reversion", "--param", "x=1"]
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


# -- promotion through the versioning code --------------------------------------------------------

@pytest.fixture
def promotion_env(prefect_harness, pg_sandbox, tmp_path, monkeypatch):
    """The sandbox with a private copy of its strategy repositories (production moves here) and
    `[strategies] approval_required = true`."""
    platform, config = pg_sandbox
    repos = tmp_path / "repos"
    shutil.copytree(platform.directory / "repos", repos)
    name, store = apply_as_own_environment(config, tmp_path, "promo", [("git.strategies.root", str(repos)),
                                                                        ("strategies.approval_required", True)])
    monkeypatch.setenv("TRADEOPS_ENVIRONMENT", name)
    return name, store, repos


def _production(repos, strategy="momentum_alpha") -> str | None:
    ref = pygit2.Repository(str(repos / strategy)).references.get("refs/heads/production")
    return str(ref.peel(pygit2.Commit).id) if ref is not None else None


def _tag_commit(repos, tag, strategy="momentum_alpha") -> str:
    repo = pygit2.Repository(str(repos / strategy))
    return str(repo.references[f"refs/tags/{tag}"].peel(pygit2.Commit).id)


def _evaluate_as_the_flow_would(store, experiment_id, control_mean, variant_mean, age=timedelta(0)):
    """An evaluation recorded through the flow's own function (the flow needs platform trades)."""
    rng = np.random.default_rng(3)
    stats = evaluate_experiment(rng.normal(control_mean, 20, 1500), rng.normal(variant_mean, 20, 1500), (50, 50))
    row = record_evaluation(store, experiment_id, stats.as_dict(), stats.decision, stats.rule, [], None)
    if age:
        with session_for(store) as session:
            stored = session.get(ExperimentEvaluation, row.id)
            stored.evaluated_at = stored.evaluated_at - age
            session.add(stored)
            session.commit()
    return stats.decision


def test_conclude_promote_needs_evidence_and_approval_moves_production_and_rollback_moves_it_back(promotion_env,
                                                                                                   capsys):
    name, store, repos = promotion_env
    v110, v120 = _tag_commit(repos, "v1.1.0"), _tag_commit(repos, "v1.2.0")
    assert main(["strategy", "approve", "momentum_alpha", "1.1.0", "--user", "admin"]) == 0
    assert main(["strategy", "promote", "momentum_alpha", "1.1.0", "--user", "bob"]) == 0  # production before
    assert _production(repos) == v110
    capsys.readouterr()
    code, out, _ = run(capsys, "create", "--user", "bob", "--strategy", "momentum_alpha", "--version", "v1.2.0",
                       "--param", "lookback=30", "--capital", "1%", "--name", "mom-v120", "--json")
    experiment_id = json.loads(out)["id"]
    assert code == 0 and json.loads(out)["variant_version"] == "1.2.0"
    code, out, _ = run(capsys, "start", "mom-v120", "--user", "bob", "--json")
    assert json.loads(out)["production"]["control"] == {"commit": v110, "tag": "v1.1.0"}

    # the latest evaluation must say promote, and be fresh
    assert _evaluate_as_the_flow_would(store, experiment_id, 3.0, 3.0, age=timedelta(days=5)) == "no-difference"
    code, _, err = run(capsys, "conclude", "mom-v120", "--action", "promote", "--user", "bob")
    assert code == 3 and "says no-difference, not promote" in err
    assert _evaluate_as_the_flow_would(store, experiment_id, 3.0, 10.0, age=timedelta(days=3)) == "promote"
    code, _, err = run(capsys, "conclude", "mom-v120", "--action", "promote", "--user", "bob")
    assert code == 3 and "3 days ago: older than 2 days" in err
    _evaluate_as_the_flow_would(store, experiment_id, 3.0, 10.0)
    # [strategies] approval_required: someone else with git.merge approves the version first
    code, _, err = run(capsys, "conclude", "mom-v120", "--action", "promote", "--user", "bob")
    assert code == 3 and "needs an approval" in err and _production(repos) == v110
    assert main(["strategy", "approve", "momentum_alpha", "1.2.0", "--user", "admin"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "conclude", "mom-v120", "--action", "promote", "--user", "bob", "--json")
    assert code == 0, out
    promoted = json.loads(out)["production"]["promoted"]
    assert _production(repos) == v120 == promoted["to_commit"] and promoted["from_commit"] == v110
    assert promoted["override"] is False and promoted["evaluation_id"] is not None
    reflog = next(iter(pygit2.Repository(str(repos / "momentum_alpha")).references["refs/heads/production"].log()))
    assert reflog.message == "tradeops promote v1.2.0" and reflog.committer.name == "bob"

    # audited twice: the pointer move (runbook 000's strategy fields) and the conclusion (the evidence)
    move = audits(store, "strategy_promote")[-1]
    assert (move.user, move.version, move.repository_hash, move.success) == ("bob", "1.2.0", v120, True)
    assert json.loads(move.details)["experiment"] == "mom-v120"
    assert json.loads(move.compliance_flags)["approved_by"] == "admin"
    conclusion = json.loads(audits(store, "experiment_conclude")[-1].details)
    assert conclusion["action"] == "promote" and "says promote" in conclusion["evidence"]
    # a change request (runbook 003), raised and implemented by the promotion, linked to its audit entry
    assert main(["change", "show", promoted["change_request"], "--json"]) == 0
    request = json.loads(capsys.readouterr().out)
    assert (request["status"], request["source"], request["implemented_by"]) == ("implemented", "strategy-promotion",
                                                                                 "bob")
    assert move.id in request["links"]["audit_entries"] and request["links"]["approved_by"] == "admin"
    assert request["links"]["commit"] == v120 and "v1.2.0" in request["title"]

    # experiment rollback: production back where the promotion found it
    code, out, _ = run(capsys, "rollback", "mom-v120", "--user", "bob", "--json")
    assert code == 0 and _production(repos) == v110
    assert json.loads(out)["production"]["rolled_back"]["to_commit"] == v110
    back = audits(store, "strategy_rollback")[-1]
    assert (back.user, back.version, back.repository_hash) == ("bob", "1.1.0", v110)
    code, _, err = run(capsys, "rollback", "mom-v120", "--user", "bob")
    assert code == 2 and "rolled back already" in err


def test_an_override_is_for_administrators_needs_a_reason_and_is_audited(promotion_env, capsys):
    name, store, repos = promotion_env
    assert main(["strategy", "approve", "momentum_alpha", "1.2.0", "--user", "bob"]) == 0
    capsys.readouterr()
    run(capsys, "create", "--user", "admin", "--strategy", "momentum_alpha", "--version", "1.2.0", "--param", "x=1",
        "--capital", "1%", "--name", "mom-override")
    run(capsys, "start", "mom-override", "--user", "admin")
    code, _, err = run(capsys, "conclude", "mom-override", "--action", "promote", "--override", "--note", "trust me",
                       "--user", "bob")
    assert code == 3 and "lacks permission experiment.override" in err
    code, _, err = run(capsys, "conclude", "mom-override", "--action", "promote", "--override", "--user", "admin")
    assert code == 2 and "--override needs --note" in err
    assert _production(repos) is None
    code, out, _ = run(capsys, "conclude", "mom-override", "--action", "promote", "--override", "--note",
                       "desk head signed off; evaluation pending", "--user", "admin", "--json")
    assert code == 0 and _production(repos) == _tag_commit(repos, "v1.2.0")
    assert json.loads(out)["production"]["promoted"]["override"] is True
    entry = audits(store, "experiment_conclude")[-1]
    assert json.loads(entry.details)["override"] is True and "no evaluation on record" in json.loads(entry.details)["evidence"]
    assert json.loads(audits(store, "strategy_promote")[-1].compliance_flags)["override"] is True
    # production had no version before: nothing to move back to
    code, _, err = run(capsys, "rollback", "mom-override", "--user", "admin")
    assert code == 2 and "nothing to move back to" in err


# -- the commands without Prefect ------------------------------------------------------------------

def _clean_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and not k.startswith("TRADEOPS_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", PYTHONPATH=str(ROOT))
    return env


PROBE = """
import json, sys
from tradeops.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "prefect": "prefect" in sys.modules, "alembic": "alembic" in sys.modules}))
"""


def _cli(env: dict, cwd: Path, *argv: str) -> tuple[dict, list]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return json.loads(lines[-1]), lines[:-1]


@pytest.mark.server  # its `tradeops` processes start ephemeral Prefect servers
def test_lifecycle_commands_read_the_applied_snapshot_without_prefect_and_notice_block_edits(tmp_path):
    """On the embedded default (an ephemeral Prefect server in PREFECT_HOME): after `apply`, the
    commands never import Prefect; a block edited afterwards (as in the UI) is noticed and read."""
    home, work = tmp_path / "prefect", tmp_path / "work"
    work.mkdir()
    _, config = build_sandbox(tmp_path / "sandbox", None, "small", 7)
    env = _clean_env(home)
    answer, _ = _cli(env, work, "apply", "--config", str(config))
    assert answer["code"] == 0
    snapshot = home / "tradeops-environments" / "sandbox.json"
    assert snapshot.is_file() and oct(snapshot.stat().st_mode & 0o777) == "0o600"
    env["TRADEOPS_ENVIRONMENT"] = "sandbox"
    answer, out = _cli(env, work, "experiment", "create", "--strategy", "momentum_alpha", "--param", "x=1",
                       "--capital", "1%", "--name", "fast", "--user", "alice", "--json")
    assert answer == {"code": 0, "prefect": False, "alembic": False}, out
    answer, out = _cli(env, work, "experiment", "show", "fast", "--user", "carol", "--json")
    assert answer["code"] == 0 and not answer["prefect"] and json.loads(out[-1])["created_by"] == "alice"
    # the same answer through the blocks (the old path), and the same audit entry shape
    answer, slow = _cli({**env, "TRADEOPS_NO_ENVIRONMENT_SNAPSHOT": "1"}, work, "experiment", "show", "fast",
                        "--user", "carol", "--json")
    assert answer["prefect"] and json.loads(slow[-1]) == json.loads(out[-1])

    # an administrator revokes alice in the UI (a block edit): the snapshot no longer matches
    edit = ("from blocks import TradeopsEnvironment\n"
            "block = TradeopsEnvironment.load('sandbox')\n"
            "block.access_users = {k: v for k, v in block.access_users.items() if k != 'alice'}\n"
            "block.save('sandbox', overwrite=True)\n")
    subprocess.run([sys.executable, "-c", edit], env=env, cwd=work, check=True, capture_output=True, timeout=600)
    answer, _ = _cli(env, work, "experiment", "list", "--user", "alice")
    assert answer["code"] == 3 and answer["prefect"]  # read from the blocks: alice has no role now
    answer, _ = _cli(env, work, "experiment", "list", "--user", "carol")
    assert answer["code"] == 0 and not answer["prefect"]  # the refreshed snapshot
    store = f"sqlite:///{config.parent / 'ops' / 'ops.db'}"
    with session_for(store) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.operation == "experiment_create")).all()
    assert [(e.user, e.success, e.flow_run_id) for e in entries] == [("alice", True, None)]


@pytest.mark.server  # its `tradeops` processes start ephemeral Prefect servers
def test_the_snapshot_decides_who_acts_as_the_blocks_do(tmp_path):
    """The fast path applies the identity rules to the snapshot's access table: the OS login's user
    from `[access] logins`, impersonation only with access.impersonate, a refused one audited (exit 3)
    alike with and without the snapshot; a read-only command that succeeds appends nothing. A no-op
    apply writes the snapshot when it is missing and appends nothing."""
    home, work = tmp_path / "prefect", tmp_path / "work"
    work.mkdir()
    _, config = build_sandbox(tmp_path / "sandbox", None, "small", 7)
    env = {**_clean_env(home), "TRADEOPS_ENVIRONMENT": "sandbox"}
    login = os_login()
    store = f"sqlite:///{config.parent / 'ops' / 'ops.db'}"
    assert _cli(env, work, "apply", "--config", str(config))[0]["code"] == 0
    snapshot = home / "tradeops-environments" / "sandbox.json"
    assert json.loads(snapshot.read_text())["access_logins"] == {login: "admin"}

    # the login's user (admin), and admin acting as alice: both names on the entry, on the fast path
    assert _cli(env, work, "experiment", "create", "--strategy", "momentum_alpha", "--param", "x=1",
                "--capital", "1%", "--name", "own")[0] == {"code": 0, "prefect": False, "alembic": False}
    assert _cli(env, work, "experiment", "create", "--strategy", "momentum_alpha", "--param", "x=2",
                "--capital", "1%", "--name", "as-alice", "--user", "alice")[0]["prefect"] is False
    created = [(e.user, json.loads(e.details)["login"], json.loads(e.details).get("impersonated_by"))
               for e in audits(store, "experiment_create")]
    assert created == [("admin", login, None), ("alice", login, "admin")]

    # a no-op apply: no block saved, no entry appended, the missing snapshot written again
    applied = len(audits(store, "config_apply"))
    snapshot.unlink()
    assert _cli(env, work, "apply", "--config", str(config))[0]["code"] == 0
    assert snapshot.is_file() and len(audits(store, "config_apply")) == applied
    written = snapshot.stat().st_mtime_ns
    assert _cli(env, work, "apply", "--config", str(config))[0]["code"] == 0
    assert snapshot.stat().st_mtime_ns == written  # a current snapshot of this file: nothing written
    assert _cli(env, work, "experiment", "show", "own")[0] == {"code": 0, "prefect": False, "alembic": False}

    # the login now maps to carol (compliance officer: may read, may not impersonate)
    mapped = f'logins = {{ "{login}" = "admin" }}'
    assert mapped in config.read_text()
    config.write_text(config.read_text().replace(mapped, f'logins = {{ "{login}" = "carol" }}'))
    assert _cli(env, work, "apply", "--config", str(config))[0]["code"] == 0  # as admin, who holds config.change
    assert json.loads(snapshot.read_text())["access_logins"] == {login: "carol"}
    fast, _ = _cli(env, work, "experiment", "list", "--user", "alice")
    slow, _ = _cli({**env, "TRADEOPS_NO_ENVIRONMENT_SNAPSHOT": "1"}, work, "experiment", "list", "--user", "alice")
    assert (fast["code"], fast["prefect"], slow["code"], slow["prefect"]) == (3, False, 3, True)
    refused = [(e.user, e.success, json.loads(e.details)) for e in audits(store, "experiment_list")]
    assert [(user, success, details["permission"], details["login"], details["requested_user"])
            for user, success, details in refused] == [("carol", False, "access.impersonate", login, "alice")] * 2
    assert refused[0][2]["denied"] == refused[1][2]["denied"]
    assert _cli(env, work, "experiment", "list")[0] == {"code": 0, "prefect": False, "alembic": False}
    assert len(audits(store, "experiment_list")) == 2  # the successful read appended nothing
