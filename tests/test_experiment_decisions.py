"""The decision matrix on the planted scenarios, SRM, capital limits, and its error rates.

The A/A simulation looks at every experiment daily for 30 days and counts a false positive
whenever any look says promote or rollback; it must stay at or under 5% for the sequential
decision, while the naive daily fixed-horizon p < 0.05 is shown beside it for contrast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.experiments.decision import CAPITAL_LIMITS, DECISION_MATRIX, capital_findings, decide, decide_batch
from tasks.experiments.statistics import EvaluationSettings, evaluate_batch, evaluate_experiment
from tradeops.sandbox.dataset import PLANTED_SCENARIOS, PNL_SD, TAIL_MULT, TAIL_PROB


def sandbox_pnl(rng, shape, mean, recenter=True):
    """The sandbox's per-trade PnL: a normal mixture with fat tails, sample mean forced to ``mean``."""
    sd = np.where(rng.random(shape) < TAIL_PROB, PNL_SD * TAIL_MULT, PNL_SD)
    x = rng.normal(0.0, 1.0, shape) * sd
    return x - x.mean(axis=-1, keepdims=True) + mean if recenter else x + mean


EXPECTED = {
    "clear-winner": ("promote", "significant-win"),
    "clear-loser": ("rollback", "significant-loss"),
    "no-effect": ("no-difference", "no-difference-after-max-trades"),
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
        assert result["srm_mismatch"] and "promotion blocked" in result["rule"]
    if scenario.name == "no-effect":
        assert "not proof of no effect" in result["rule"] and "TOST" in result["rule"]


def test_srm_blocks_promotion_but_not_rollback():
    rng = np.random.default_rng(1)
    control = sandbox_pnl(rng, 1400, 4.0)
    winner = evaluate_experiment(control, sandbox_pnl(rng, 600, 10.0), (90, 10)).as_dict()
    assert winner["significant"] and winner["lift"] > 0.1 and winner["cohen_d"] > 0.2
    assert winner["decision"] == "extend" and "promotion blocked: sample-ratio mismatch" in winner["rule"]
    loser = evaluate_experiment(control, sandbox_pnl(rng, 600, -2.0), (90, 10)).as_dict()
    assert loser["decision"] == "rollback"  # rolling back is the safe direction even with a broken split
    fine = evaluate_experiment(control, sandbox_pnl(rng, 600, 10.0), (70, 30)).as_dict()
    assert not fine["srm_mismatch"] and fine["decision"] == "promote"


def test_the_no_difference_rule_states_power_and_equivalence():
    rng = np.random.default_rng(2)
    result = evaluate_experiment(sandbox_pnl(rng, 800, 3.0), sandbox_pnl(rng, 800, 3.0), (50, 50))
    d = result.as_dict()
    assert d["decision"] == "no-difference"
    assert d["power"]["power_at_mde"]["sequential"] < 0.8  # honest: 800 trades could not see a 10% lift
    assert d["power"]["sequential_mde"]["additional_control"] > 0
    assert d["power"]["fixed_observed"]["total_trades_needed"] is None  # observed difference exactly 0
    assert d["equivalence_tost"]["p_value"] is not None and f"{d['equivalence_tost']['p_value']:.3g}" in d["rule"]
    assert any(row[0] == "decision" and row[3] == "no-difference" for row in result.table())


def test_significant_but_small_effect_extends_and_fixed_horizon_is_labelled():
    rng = np.random.default_rng(4)
    small = evaluate_experiment(sandbox_pnl(rng, 20000, 3.0), sandbox_pnl(rng, 20000, 4.0), (50, 50)).as_dict()
    assert small["significant"] and small["cohen_d"] < 0.2 and small["decision"] == "extend"
    fixed = evaluate_experiment(sandbox_pnl(rng, 300, 3.0), sandbox_pnl(rng, 300, 3.0), (50, 50),
                                EvaluationSettings(sequential=False)).as_dict()
    assert "fixed-horizon" in fixed["test"] and fixed["p_value"] == fixed["fixed_horizon"]["p_value"]


def test_rollback_on_a_point_estimate_alone_is_configurable():
    rng = np.random.default_rng(6)
    control, variant = sandbox_pnl(rng, 150, 5.0), sandbox_pnl(rng, 150, 4.0)  # -20%, far from significant
    assert evaluate_experiment(control, variant, (50, 50)).decision == "extend"
    eager = EvaluationSettings(rollback_requires_significance=False)
    assert evaluate_experiment(control, variant, (50, 50), eager).decision == "rollback"


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
    assert {rule.action for rule in DECISION_MATRIX} == {"promote", "rollback", "no-difference", "extend"}


def _daily_decisions(rng, experiments, days, per_day, control_mean, variant_mean, settings):
    """Actions at each daily look on cumulative trades (stateless: each look sees all trades so far)."""
    control = sandbox_pnl(rng, (experiments, days * per_day), control_mean, recenter=False)
    variant = sandbox_pnl(rng, (experiments, days * per_day), variant_mean, recenter=False)
    actions, naive = [], []
    for day in range(1, days + 1):
        batch = evaluate_batch(control[:, :day * per_day], variant[:, :day * per_day], (50, 50), settings,
                               runbook_battery=False)
        actions.append(decide_batch(batch))
        naive.append(batch.columns["welch_p"] < settings.alpha)
    return np.array(actions), np.array(naive)


def _rate(hits: np.ndarray) -> tuple[float, float]:
    p = float(hits.mean())
    return p, 1.96 * math.sqrt(p * (1 - p) / hits.size)


def test_aa_daily_looks_keep_false_positives_at_or_under_five_percent():
    settings = EvaluationSettings()
    actions, naive = _daily_decisions(np.random.default_rng(2026), 2000, 30, 40, 3.0, 3.0, settings)
    false_positive = np.isin(actions, ["promote", "rollback"]).any(axis=0)
    seq, seq_err = _rate(false_positive)
    naive_rate, naive_err = _rate(naive.any(axis=0))
    fixed_actions, _ = _daily_decisions(np.random.default_rng(2026), 2000, 30, 40, 3.0, 3.0,
                                        EvaluationSettings(sequential=False))
    fixed, fixed_err = _rate(np.isin(fixed_actions, ["promote", "rollback"]).any(axis=0))
    print(f"\nA/A, 2000 experiments x 30 daily looks (40 trades/group/day): "
          f"sequential decision false positives {seq:.2%} ± {seq_err:.2%}; "
          f"decision on fixed-horizon p {fixed:.2%} ± {fixed_err:.2%}; "
          f"naive daily fixed-horizon p < 0.05 {naive_rate:.2%} ± {naive_err:.2%}")
    assert seq <= 0.05
    assert naive_rate > 0.15  # the problem the sequential test solves


def test_ab_power_with_a_true_effect():
    actions, _ = _daily_decisions(np.random.default_rng(7), 1000, 30, 40, 3.0, 8.0, EvaluationSettings())
    promoted = (actions == "promote").any(axis=0)
    power, err = _rate(promoted)
    first_day = np.argmax(actions == "promote", axis=0)[promoted] + 1
    wrong = float((actions == "rollback").any(axis=0).mean())
    print(f"\nA/B, true means 3.0 vs 8.0 (d ~ 0.25), 1000 experiments x 30 days: promoted by day 30 "
          f"{power:.1%} ± {err:.1%}, median day {np.median(first_day):.0f}; rolled back {wrong:.1%}")
    assert power >= 0.8 and wrong == 0.0
