"""The decision matrix on the planted scenarios, SRM, capital limits, budgets, and its error rates.

The A/A simulation looks at every experiment daily for 30 days (the planned duration) and stops
an experiment at its first terminal decision, as ops would; a false decision is a promote or a
rollback. It must stay at or under 5% for the sequential decision, with about as many false
rollbacks as false promotions, while the naive daily fixed-horizon p < 0.05 is shown beside it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from tasks.experiments.decision import (ACTIONS, CAPITAL_LIMITS, DECISION_MATRIX, TERMINAL, ExperimentPlan,
                                        capital_findings, decide, decide_batch)
from tasks.experiments.statistics import EvaluationSettings, evaluate_batch, evaluate_experiment
from tradeops.sandbox.dataset import EFFECTIVE_SD, PLANTED_SCENARIOS, PNL_SD, TAIL_MULT, TAIL_PROB


def sandbox_pnl(rng, shape, mean, recenter=True):
    """The sandbox's per-trade PnL: a normal mixture with fat tails, sample mean forced to ``mean``."""
    sd = np.where(rng.random(shape) < TAIL_PROB, PNL_SD * TAIL_MULT, PNL_SD)
    x = rng.normal(0.0, 1.0, shape) * sd
    return x - x.mean(axis=-1, keepdims=True) + mean if recenter else x + mean


EXPECTED = {
    "clear-winner": ("promote", "significant-win"),
    "clear-loser": ("rollback", "significant-loss"),
    "no-effect": ("no-difference", "no-material-difference"),
    "too-few-trades": ("extend", "insufficient-data"),
    "sample-ratio-mismatch": ("extend", "sample-ratio-mismatch"),
}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scenario", PLANTED_SCENARIOS, ids=lambda s: s.name)
def test_planted_scenarios_get_the_runbook_decision(scenario, seed):
    rng = np.random.default_rng(seed)
    control = sandbox_pnl(rng, scenario.control_trades, scenario.control_mean)
    variant = sandbox_pnl(rng, scenario.variant_trades, scenario.variant_mean)
    result = evaluate_experiment(control, variant, scenario.split).as_dict()
    assert (result["decision"], result["rule_name"]) == EXPECTED[scenario.name], result["rule"]
    if scenario.name == "sample-ratio-mismatch":
        assert result["srm_mismatch"] and "promotion blocked" in result["rule"].lower()
    if scenario.name == "no-effect":
        assert "inside ±" in result["rule"] and result["terminal"]


def test_srm_blocks_promotion_but_not_rollback():
    rng = np.random.default_rng(1)
    control = sandbox_pnl(rng, 1400, 4.0)
    winner = evaluate_experiment(control, sandbox_pnl(rng, 600, 10.0), (90, 10)).as_dict()
    assert winner["significant"] and winner["lift"] > 0.1 and winner["cohen_d"] > 0.2
    assert winner["decision"] == "extend" and "promotion blocked: sample-ratio mismatch" in winner["rule"].lower()
    loser = evaluate_experiment(control, sandbox_pnl(rng, 600, -2.0), (90, 10)).as_dict()
    assert loser["decision"] == "rollback"  # rolling back is the safe direction even with a broken split
    fine = evaluate_experiment(control, sandbox_pnl(rng, 600, 10.0), (70, 30)).as_dict()
    assert not fine["srm_mismatch"] and fine["decision"] == "promote"


def test_the_no_difference_rule_states_power_and_equivalence():
    rng = np.random.default_rng(2)
    result = evaluate_experiment(sandbox_pnl(rng, 900, 3.0), sandbox_pnl(rng, 900, 3.3), (50, 50))
    d = result.as_dict()
    assert (d["decision"], d["rule_name"], d["terminal"]) == ("no-difference", "no-difference-after-max-trades", True)
    assert d["power"]["minimum_detectable_effect"] == d["material_effect"]  # power against what the decision acts on
    assert "power against the material effect" in d["rule"] and "%" in d["rule"]
    assert d["budget"]["trades_reached"] and "at the trade budget" in d["rule"]
    assert d["equivalence_tost"]["p_value"] is not None and "TOST" in d["rule"]
    assert d["evidence"]["n_control"] == 900 and "p_value" in d["evidence"]
    exact = evaluate_experiment(sandbox_pnl(rng, 800, 3.0), sandbox_pnl(rng, 800, 3.0), (50, 50)).as_dict()
    assert exact["power"]["fixed_observed"]["total_trades_needed"] is None  # observed difference exactly 0
    assert any(row[0] == "decision" and row[3] == "**no-difference**" for row in result.table())


def test_significant_but_small_effect_ends_as_no_material_difference():
    rng = np.random.default_rng(4)
    small = evaluate_experiment(sandbox_pnl(rng, 20000, 3.0), sandbox_pnl(rng, 20000, 4.0), (50, 50)).as_dict()
    assert small["significant"] and small["cohen_d"] < 0.2 and small["lift"] > 0.1
    assert small["decision"] == "no-difference" and small["terminal"], small["rule"]
    assert "No material difference" in small["rule"]
    fixed = evaluate_experiment(sandbox_pnl(rng, 300, 3.0), sandbox_pnl(rng, 300, 3.0), (50, 50),
                                EvaluationSettings(sequential=False)).as_dict()
    assert "fixed-horizon" in fixed["test"] and fixed["p_value"] == fixed["fixed_horizon"]["p_value"]


def _issue_example(seed: int):
    """The issue's case: 45,000 control and 5,000 variant trades, lift +44%, Cohen's d 0.15."""
    rng = np.random.default_rng(seed)
    control = sandbox_pnl(rng, 45000, 6.85)
    pooled_sd = float(np.std(control, ddof=1))
    variant = sandbox_pnl(rng, 5000, 6.85 + 0.15 * pooled_sd)
    return control, variant


@pytest.mark.parametrize("seed", range(3))
def test_the_45000_5000_experiment_gets_a_terminal_decision_with_its_reason(seed):
    control, variant = _issue_example(seed)
    d = evaluate_experiment(control, variant, (90, 10)).as_dict()
    assert d["lift"] == pytest.approx(0.44, abs=0.03) and d["cohen_d"] == pytest.approx(0.15, abs=0.01)
    assert d["significant"] and d["p_value"] < 1e-6
    assert d["terminal"] and d["decision"] == "no-difference", d["rule"]
    assert d["rule_name"] in ("no-material-difference", "immaterial-at-budget")
    assert "Cohen's d +0.15" in d["rule"] and "bar ±0.2" in d["rule"] and "Would change it" in d["rule"]
    assert d["budget"]["trades_reached"]


def test_every_extend_says_until_when_and_every_planted_case_ends_by_its_budget():
    now = datetime(2026, 12, 5, tzinfo=timezone.utc)
    running = ExperimentPlan(now - timedelta(days=21), now + timedelta(days=7), now)
    over = ExperimentPlan(now - timedelta(days=29), now - timedelta(days=1), now)
    for scenario in PLANTED_SCENARIOS:
        rng = np.random.default_rng(1)
        control = sandbox_pnl(rng, scenario.control_trades, scenario.control_mean)
        variant = sandbox_pnl(rng, scenario.variant_trades, scenario.variant_mean)
        today = evaluate_experiment(control, variant, scenario.split, plan=running).as_dict()
        if today["decision"] == "extend":
            assert "Extend until 2026-12-12 (the planned end)" in today["rule"], today["rule"]
            assert "Would change it" in today["rule"]
        late = evaluate_experiment(control, variant, scenario.split, plan=over).as_dict()
        assert late["terminal"] and late["decision"] in TERMINAL, (scenario.name, late["rule"])
        assert late["budget"]["planned_end"]["end_reached"]
    expected_late = {"too-few-trades": "insufficient-data-at-budget", "sample-ratio-mismatch": "sample-ratio-mismatch-at-budget"}
    for name, rule in expected_late.items():
        scenario = next(s for s in PLANTED_SCENARIOS if s.name == name)
        rng = np.random.default_rng(1)
        late = evaluate_experiment(sandbox_pnl(rng, scenario.control_trades, scenario.control_mean),
                                   sandbox_pnl(rng, scenario.variant_trades, scenario.variant_mean), scenario.split,
                                   plan=over)
        assert (late.decision, late.rule_name) == ("inconclusive", rule)


def test_promote_and_rollback_need_the_same_evidence_unless_a_named_setting_says_otherwise():
    rng = np.random.default_rng(6)
    control, variant = sandbox_pnl(rng, 150, 5.0), sandbox_pnl(rng, 150, 4.0)  # -20%, far from significant
    assert evaluate_experiment(control, variant, (50, 50)).decision == "extend"
    literal = EvaluationSettings(rollback_requires_significance=False, rollback_requires_effect_size=False)
    eager = evaluate_experiment(control, variant, (50, 50), literal)
    assert eager.decision == "rollback" and "rollback_requires_significance = false" in eager.rule
    # mirror images: a significant +15% / -15% with d 0.1 neither promotes nor rolls back
    rng = np.random.default_rng(8)
    base = sandbox_pnl(rng, 6000, 13.0)
    for sign in (1, -1):
        other = sandbox_pnl(rng, 6000, 13.0 + sign * 2.0)
        d = evaluate_experiment(base, other, (50, 50)).as_dict()
        assert d["significant"] and abs(d["cohen_d"]) < 0.2 and abs(d["lift"]) > 0.1
        assert d["decision"] not in ("promote", "rollback"), d["rule"]
    loose = EvaluationSettings(rollback_requires_effect_size=False)
    worse = evaluate_experiment(base, sandbox_pnl(rng, 6000, 11.0), (50, 50), loose)
    assert worse.decision == "rollback" and "rollback_requires_effect_size = false" in worse.rule


def test_capital_limits_are_compliance_findings():
    assert CAPITAL_LIMITS["experiment"][0] == 10.0 and CAPITAL_LIMITS["strategy"][0] == 5.0
    assert capital_findings(10.0, 5.0) == ()  # at the limit is compliant
    findings = capital_findings(12.5, 5.5)
    assert len(findings) == 2 and "12.5%" in findings[0] and "10% limit" in findings[0] and "5% limit" in findings[1]
    rng = np.random.default_rng(3)
    result = evaluate_experiment(sandbox_pnl(rng, 200, 3.0), sandbox_pnl(rng, 200, 3.0), (50, 50), capital_pct=15.0)
    assert result.as_dict()["compliance_findings"] == list(capital_findings(15.0, None))
    assert decide(result, capital_pct=3.0, strategy_capital_pct=6.0).compliance_findings == capital_findings(None, 6.0)
    with pytest.raises(ValueError, match="finite non-negative"):
        capital_findings(float("nan"), None)


def test_every_rule_is_reachable_data():
    names = [rule.name for rule in DECISION_MATRIX]
    assert len(set(names)) == len(names) and names[-1] == "keep-collecting"
    assert {rule.action for rule in DECISION_MATRIX} == set(ACTIONS)
    assert set(TERMINAL) == set(ACTIONS) - {"extend"}


def _daily_decisions(rng, experiments, days, per_day, control_mean, variant_mean, settings, split=(50, 50)):
    """Actions at each daily look on cumulative trades (stateless: each look sees all trades so far);
    the last day is the planned end."""
    frac = split[1] / 100
    n_v = max(1, round(2 * per_day * frac))
    n_c = 2 * per_day - n_v
    control = sandbox_pnl(rng, (experiments, days * n_c), control_mean, recenter=False)
    variant = sandbox_pnl(rng, (experiments, days * n_v), variant_mean, recenter=False)
    actions, naive = [], []
    for day in range(1, days + 1):
        batch = evaluate_batch(control[:, :day * n_c], variant[:, :day * n_v], split, settings, runbook_battery=False)
        actions.append(decide_batch(batch, planned_end_reached=float(day == days)))
        naive.append(batch.columns["welch_p"] < settings.alpha)
    return np.array(actions), np.array(naive)


def _concluded(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each experiment's first terminal action (ops conclude it there) and the day it came."""
    terminal = np.isin(actions, TERMINAL)
    first = np.argmax(terminal, axis=0)
    assert terminal.any(axis=0).all(), "an experiment never ended"
    return actions[first, np.arange(actions.shape[1])], first + 1


def _rate(hits: np.ndarray) -> tuple[float, float]:
    p = float(hits.mean())
    return p, 1.96 * math.sqrt(p * (1 - p) / hits.size)


@pytest.mark.slow  # a simulation: minutes on a loaded machine
def test_aa_daily_looks_keep_false_decisions_at_or_under_five_percent_and_symmetric():
    settings = EvaluationSettings()
    actions, naive = _daily_decisions(np.random.default_rng(2026), 2000, 30, 40, 3.0, 3.0, settings)
    final, day = _concluded(actions)
    promote, promote_err = _rate(final == "promote")
    rollback, rollback_err = _rate(final == "rollback")
    # stricter: an experiment nobody concluded, looked at on all 30 days
    any_promote, _ = _rate((actions == "promote").any(axis=0))
    any_rollback, _ = _rate((actions == "rollback").any(axis=0))
    naive_rate, naive_err = _rate(naive.any(axis=0))
    fixed_actions, _ = _daily_decisions(np.random.default_rng(2026), 2000, 30, 40, 3.0, 3.0,
                                        EvaluationSettings(sequential=False))
    fixed_final = _concluded(fixed_actions)[0]
    fixed, fixed_err = _rate(np.isin(fixed_final, ["promote", "rollback"]))
    print(f"\nA/A, 2000 experiments x 30 daily looks (40 trades/group/day), concluded at the first terminal "
          f"decision (median day {np.median(day):.0f}): false promotions {promote:.2%} ± {promote_err:.2%}, "
          f"false rollbacks {rollback:.2%} ± {rollback_err:.2%}; decision on fixed-horizon p {fixed:.2%} ± "
          f"{fixed_err:.2%} (promote {(fixed_final == 'promote').mean():.2%}, rollback "
          f"{(fixed_final == 'rollback').mean():.2%}); naive daily fixed-horizon p < 0.05 {naive_rate:.2%} ± {naive_err:.2%}; "
          f"outcomes {dict(zip(*np.unique(final, return_counts=True)))}; never concluded, any of 30 looks: "
          f"promote {any_promote:.2%}, rollback {any_rollback:.2%}")
    assert promote + rollback <= 0.05 and any_promote + any_rollback <= 0.05
    assert abs(any_promote - any_rollback) <= 0.01
    assert abs(promote - rollback) <= 2 * math.hypot(promote_err, rollback_err) / 1.96 + 0.004  # about equal
    assert naive_rate > 0.15  # the problem the sequential test solves


@pytest.mark.slow  # a simulation
def test_ab_power_with_a_true_effect():
    actions, _ = _daily_decisions(np.random.default_rng(7), 1000, 30, 40, 3.0, 8.0, EvaluationSettings())
    final, day = _concluded(actions)
    power, err = _rate(final == "promote")
    wrong = float((final == "rollback").mean())
    print(f"\nA/B, true means 3.0 vs 8.0 (d ~ 0.25), 1000 experiments x 30 days: promoted {power:.1%} ± {err:.1%}, "
          f"median day {np.median(day[final == 'promote']):.0f}; rolled back {wrong:.1%}")
    assert power >= 0.8 and wrong == 0.0


@pytest.mark.slow  # a simulation
def test_power_for_a_true_d_of_0_3_by_5000_trades():
    effect = 0.3 * EFFECTIVE_SD  # d = 0.3 on the sandbox's fat-tailed PnL
    actions, _ = _daily_decisions(np.random.default_rng(30), 1000, 25, 100, 3.0, 3.0 + effect, EvaluationSettings())
    final, day = _concluded(actions)  # 25 days x 200 trades: 5,000 trades in all
    power, err = _rate(final == "promote")
    print(f"\nA/B, true d = 0.3, 1000 experiments, 5,000 trades by the planned end: promoted {power:.1%} ± {err:.1%} "
          f"(median day {np.median(day[final == 'promote']):.0f}); other outcomes "
          f"{dict(zip(*np.unique(final[final != 'promote'], return_counts=True)))}")
    assert power > 0.95
