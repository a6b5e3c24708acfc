"""The runbook decision matrix as data: ordered rules, first match wins, thresholds from settings.

Runbooks 000/001: variant +10% and p < 0.05 (and Cohen's d > 0.2) -> promote; variant -10% ->
rollback; no significance after 500 trades -> no difference; mixed results -> extend; fewer than
100 trades per group -> extend (insufficient data).

What this adds, so that every experiment ends and its answer can be trusted:
- significance is the always-valid test (daily looks), corrected across the decision's metrics;
- promotion and rollback need the same evidence: significant, and a material point estimate
  (lift beyond ±10% and Cohen's d beyond ±0.2); settings name the two ways to relax rollback;
- an always-valid interval inside ±(the material effect) ends the experiment as no difference;
- every experiment has a budget: its planned end date, and a trade budget per group (what the
  test needs to find the material effect with the configured power, 500 to 20,000 by default).
  "Extend" always says until when; at the budget the decision is terminal: a significant but
  immaterial difference is no difference, mixed or thin evidence is inconclusive;
- the runbook's "no significance after 500 trades" waits for the trade budget: at 500 trades per
  group the always-valid test has less than half the power of a one-look t test (d = 0.2: 42%
  against 88%), so stopping there would call most real improvements of d 0.2-0.25 "no
  difference". 500 stays the floor, and an interval already inside ±(the material effect) ends
  the experiment sooner;
- a sample-ratio mismatch blocks promotion and no-difference; capital over the limits is a
  compliance finding.

Each decision names its rule, the numbers the rule used, and what would change it.

Predicates use only numpy element-wise operators, so the same rule works on one experiment
(``decide``) and on a whole batch (``decide_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from .capital import CAPITAL_LIMITS, capital_findings
from .formatting import count, number, p_value, percent, signed

__all__ = ["ACTIONS", "TERMINAL", "CAPITAL_LIMITS", "DECISION_MATRIX", "Decision", "ExperimentPlan", "Rule",
           "capital_findings", "decide", "decide_batch"]

if TYPE_CHECKING:
    from .statistics.settings import EvaluationSettings

ACTIONS = ("promote", "rollback", "no-difference", "inconclusive", "extend")
TERMINAL = ("promote", "rollback", "no-difference", "inconclusive")  # the experiment has its answer: conclude it

@dataclass(frozen=True)
class ExperimentPlan:
    """When an experiment started and is planned to end, and when this evaluation looks at it."""

    started_at: datetime | None
    ends_at: datetime | None
    now: datetime

    @property
    def end_reached(self) -> bool:
        return self.ends_at is not None and _utc(self.now) >= _utc(self.ends_at)

    def trades_per_day(self, trades: float) -> float | None:
        if self.started_at is None:
            return None
        days = (_utc(self.now) - _utc(self.started_at)).total_seconds() / 86400
        return trades / days if days >= 0.5 and trades > 0 else None

    def as_dict(self) -> dict:
        return {"started_at": _iso(self.started_at), "ends_at": _iso(self.ends_at), "now": _iso(self.now),
                "end_reached": self.end_reached}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat()


# -- predicates (vectorised) ---------------------------------------------------------------------

def _smallest(s):
    return np.minimum(s["n_control"], s["n_variant"])


def _significant(s, c):
    return s["adjusted_mean_pnl"] < c.alpha


def _guardrail_breached(s, c):
    """Variant significantly worse on a risk metric (same-kind adjusted): promotion must not buy that."""
    return ((s["adjusted_sharpe"] < c.alpha) & (s["sharpe_diff"] < 0)) | \
        ((s["adjusted_win_rate"] < c.alpha) & (s["win_rate_diff"] < 0))


def _material_gain(s, c):
    return (s["lift_vs_threshold"] >= 1) & (s["effect_d"] > c.min_cohen_d)


def _material_loss(s, c):
    size = (s["effect_d"] < -c.min_cohen_d) if c.rollback_requires_effect_size else True
    return (s["lift_vs_threshold"] <= -1) & size


def _budget(s):
    return (s["trade_budget_reached"] > 0) | (s["planned_end_reached"] > 0)


def _srm(s, c):
    return s["srm_p_value"] < c.srm_threshold


def _inside_material(s):
    return (s["ci_low"] > -s["material_effect"]) & (s["ci_high"] < s["material_effect"])


# -- sentences (one experiment, scalar facts) ----------------------------------------------------

def _effect(s, c) -> str:
    size = f"Cohen's d {signed(s['effect_d'])} (bar ±{number(c.min_cohen_d)})"
    if s["lift_absolute_basis"] > 0:
        return (f"mean difference {signed(s['estimate_difference'])} per trade (absolute bar "
                f"±{number(s['absolute_threshold'])}, the control mean is near zero), {size}")
    return f"lift {percent(s['lift'], signed_=True)} (bar ±{percent(c.lift_threshold)}), {size}"


def _p(s, c) -> str:
    kind = "always-valid" if c.sequential else "fixed-horizon"
    method = "Holm" if c.multiple_testing == "holm" else "Benjamini-Hochberg"
    return (f"p={p_value(s['p_value'])} ({kind}; {method}-adjusted over PnL, Sharpe and win rate: "
            f"{p_value(s['adjusted_mean_pnl'])})")


def _interval(s) -> str:
    return f"interval [{number(s['ci_low'])}, {number(s['ci_high'])}] per trade"


def _bar(s) -> str:
    return f"±{number(s['material_effect'])} per trade"


def _budget_text(s, plan: ExperimentPlan | None) -> str:
    trades = f"{count(s['trade_budget_control'])}/{count(s['trade_budget_variant'])} trades (control/variant)"
    if plan is not None and plan.ends_at is not None:
        return f"{_utc(plan.ends_at):%Y-%m-%d} (the planned end) or {trades}, whichever comes first"
    return trades


def _until(s, c, plan: ExperimentPlan | None) -> str:
    text = f"Extend until {_budget_text(s, plan)}"
    if plan is not None:
        need = max(s["trade_budget_control"] - s["n_control"], s["trade_budget_variant"] - s["n_variant"], 0)
        rate = plan.trades_per_day(min(s["n_control"], s["n_variant"]))
        if rate and need > 0:
            text += f"; at today's rate the trade budget is {number(need / rate, 2)} days away"
    return text + "; the decision is then terminal."


def _what_promotes(c) -> str:
    return (f"significance with lift ≥ +{percent(c.lift_threshold)} and d > {number(c.min_cohen_d)} promotes")


def _what_rolls_back(c) -> str:
    parts = [f"lift ≤ -{percent(c.lift_threshold)}"]
    if c.rollback_requires_effect_size:
        parts.append(f"d < -{number(c.min_cohen_d)}")
    return ("significance with " if c.rollback_requires_significance else "a point estimate with ") + \
        " and ".join(parts) + " rolls back"


def _keep_collecting(s, c, plan) -> str:
    return (f"No rule fired yet: {_effect(s, c)}, {_p(s, c)}, {_interval(s)}. {_until(s, c, plan)} "
            f"Would change it: {_what_promotes(c)}; {_what_rolls_back(c)}; an interval inside {_bar(s)} "
            f"is no difference, as is no significance at the budget.")


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    applies: Callable[[Mapping[str, Any], Any], Any]
    because: Callable[[Mapping[str, Any], Any, ExperimentPlan | None], str]
    uses: tuple[str, ...]  # the facts the rule reads: shown as the decision's evidence


_COUNTS = ("n_control", "n_variant")
_TEST = ("estimate_difference", "p_value", "adjusted_mean_pnl", "ci_low", "ci_high")
_SIZE = ("lift", "lift_vs_threshold", "effect_d")
_BUDGET = ("trade_budget_control", "trade_budget_variant", "trade_budget_reached", "planned_end_reached")

DECISION_MATRIX: tuple[Rule, ...] = (
    Rule("insufficient-data", "extend",
         lambda s, c: (_smallest(s) < c.min_trades_per_group) & ~_budget(s),
         lambda s, c, plan: (f"Insufficient data: control {count(s['n_control'])} and variant {count(s['n_variant'])} "
                             f"trades; the runbook needs at least {c.min_trades_per_group} per group. "
                             f"{_until(s, c, plan)} Would change it: the rules apply from "
                             f"{c.min_trades_per_group} trades per group."),
         _COUNTS + _BUDGET),
    Rule("insufficient-data-at-budget", "inconclusive",
         lambda s, c: (_smallest(s) < c.min_trades_per_group) & _budget(s),
         lambda s, c, plan: (f"Inconclusive: the budget ran out with control {count(s['n_control'])} and variant "
                             f"{count(s['n_variant'])} trades, under the runbook's {c.min_trades_per_group} per group. "
                             f"Conclude it keeping the control (rollback); re-plan with more capital or time."),
         _COUNTS + _BUDGET),
    Rule("significant-loss", "rollback",
         lambda s, c: _material_loss(s, c) & (_significant(s, c) | (not c.rollback_requires_significance)),
         lambda s, c, plan: (f"Variant is worse: {_effect(s, c)}, {_p(s, c)}, {_interval(s)}; roll back now"
                             + ("" if c.rollback_requires_significance else
                                " (rollback_requires_significance = false: the point estimate alone decides)")
                             + ("" if c.rollback_requires_effect_size else
                                " (rollback_requires_effect_size = false: no d bar for rollback)")
                             + ". Would change it: nothing at a later look; a loss this size is acted on."),
         _COUNTS + _TEST + _SIZE),
    Rule("sample-ratio-mismatch", "extend",
         lambda s, c: _srm(s, c) & ~_budget(s),
         lambda s, c, plan: (f"Promotion blocked: sample-ratio mismatch (chi-square p={p_value(s['srm_p_value'])} < "
                             f"{c.srm_threshold}, {count(s['n_control'])}/{count(s['n_variant'])} trades against the "
                             f"configured split); fix trade assignment before trusting any result. {_until(s, c, plan)} "
                             f"Would change it: trades arriving in the configured split."),
         _COUNTS + ("srm_p_value",) + _BUDGET),
    Rule("sample-ratio-mismatch-at-budget", "inconclusive",
         lambda s, c: _srm(s, c) & _budget(s),
         lambda s, c, plan: (f"Inconclusive: the trades never matched the configured split (chi-square "
                             f"p={p_value(s['srm_p_value'])}, {count(s['n_control'])}/{count(s['n_variant'])} trades) "
                             f"and the budget has run out. Conclude it keeping the control (rollback), fix the "
                             f"assignment and run it again."),
         _COUNTS + ("srm_p_value",) + _BUDGET),
    Rule("significant-win", "promote",
         lambda s, c: _material_gain(s, c) & _significant(s, c) & ~_guardrail_breached(s, c),
         lambda s, c, plan: (f"Variant is better: {_effect(s, c)}, {_p(s, c)}, {_interval(s)}, and not significantly "
                             f"worse on Sharpe or win rate; promote. Would change it: an interval reaching 0, or a "
                             f"Sharpe or win-rate guardrail breach, at a later look."),
         _COUNTS + _TEST + _SIZE + ("adjusted_sharpe", "adjusted_win_rate")),
    Rule("no-difference-after-max-trades", "no-difference",
         lambda s, c: ~_significant(s, c) & ((s["trade_budget_reached"] > 0) | (
             (s["planned_end_reached"] > 0) & (_smallest(s) >= c.no_difference_after_trades))),
         lambda s, c, plan: (f"No significant difference after {count(s['n_control'])}/{count(s['n_variant'])} trades "
                             f"({_p(s, c)}), at {'the trade budget' if s['trade_budget_reached'] else 'the planned end'}"
                             f"; not proof of no effect: power against the material effect {_bar(s)} was "
                             f"{percent(s['power_sequential_at_mde' if c.sequential else 'power_fixed_at_mde'])}, "
                             f"equivalence (TOST, fixed-horizon) within {_bar(s)}: p={p_value(s['tost_p'])}"
                             f" ({'shown' if s['tost_p'] < c.alpha else 'not shown'}). Conclude it keeping the control "
                             f"(rollback). Would change it: nothing; the runbook concludes here."),
         _COUNTS + _TEST + _BUDGET + ("power_sequential_at_mde", "power_fixed_at_mde", "tost_p", "material_effect")),
    Rule("no-material-difference", "no-difference",
         lambda s, c: _inside_material(s),
         lambda s, c, plan: (f"No material difference: the {'always-valid ' if c.sequential else ''}{_interval(s)} lies "
                             f"inside {_bar(s)}, the smallest effect the decision acts on ({_effect(s, c)}); no "
                             f"promotion or rollback can follow. Would change it: nothing; conclude."),
         _COUNTS + _TEST + _SIZE + ("material_effect",)),
    Rule("promotion-guardrail", "extend",
         lambda s, c: _material_gain(s, c) & _significant(s, c) & _guardrail_breached(s, c) & ~_budget(s),
         lambda s, c, plan: (f"Mixed results: mean PnL is better ({_effect(s, c)}) but the variant is significantly "
                             f"worse on Sharpe (adjusted p={p_value(s['adjusted_sharpe'])}) or win rate (adjusted "
                             f"p={p_value(s['adjusted_win_rate'])}); not promoted. {_until(s, c, plan)} Would change "
                             f"it: the guardrail clearing (promote) or the PnL gain vanishing."),
         _COUNTS + _TEST + _SIZE + ("adjusted_sharpe", "adjusted_win_rate") + _BUDGET),
    Rule("promotion-guardrail-at-budget", "inconclusive",
         lambda s, c: _material_gain(s, c) & _significant(s, c) & _guardrail_breached(s, c) & _budget(s),
         lambda s, c, plan: (f"Inconclusive, mixed to the end: mean PnL better ({_effect(s, c)}) but significantly "
                             f"worse on Sharpe (adjusted p={p_value(s['adjusted_sharpe'])}) or win rate (adjusted "
                             f"p={p_value(s['adjusted_win_rate'])}). Conclude it keeping the control (rollback)."),
         _COUNTS + _TEST + _SIZE + ("adjusted_sharpe", "adjusted_win_rate") + _BUDGET),
    Rule("immaterial-at-budget", "no-difference",
         lambda s, c: _significant(s, c) & _budget(s),
         lambda s, c, plan: (f"No material difference: the difference is real ({_p(s, c)}, {_interval(s)}) but "
                             f"below the runbook's bars ({_effect(s, c)}), and the budget "
                             f"({_budget_text(s, plan)}) is reached. Conclude it keeping the control (rollback). "
                             f"Would change it: nothing; more trades only narrow an effect this small."),
         _COUNTS + _TEST + _SIZE + _BUDGET),
    Rule("budget-reached", "inconclusive",
         lambda s, c: _budget(s),
         lambda s, c, plan: (f"Inconclusive: the planned end came with {count(s['n_control'])}/{count(s['n_variant'])} "
                             f"trades, short of the runbook's {c.no_difference_after_trades} per group, and no "
                             f"significant difference ({_p(s, c)}; power against {_bar(s)} was "
                             f"{percent(s['power_sequential_at_mde' if c.sequential else 'power_fixed_at_mde'])}). "
                             f"Conclude it keeping the control (rollback)."),
         _COUNTS + _TEST + _BUDGET),
    Rule("keep-collecting", "extend",
         lambda s, c: np.ones_like(s["n_control"], dtype=bool),
         _keep_collecting,
         _COUNTS + _TEST + _SIZE + ("material_effect",) + _BUDGET),
)


@dataclass(frozen=True)
class Decision:
    action: str
    rule: str  # the sentence: why, until when, what would change it
    rule_name: str
    compliance_findings: tuple[str, ...] = field(default_factory=tuple)
    evidence: dict = field(default_factory=dict)  # the numbers the rule used

    @property
    def terminal(self) -> bool:
        return self.action in TERMINAL


def _facts(stats, plan: ExperimentPlan | None = None) -> dict[str, np.ndarray]:
    row = stats.row if hasattr(stats, "row") and not callable(stats.row) else stats
    facts = {k: np.asarray(np.nan if v is None else v, dtype=float) for k, v in row.items()
             if isinstance(v, (int, float, np.floating, np.integer)) or v is None}
    facts["planned_end_reached"] = np.asarray(float(plan.end_reached) if plan is not None else 0.0)
    return facts


def _first_rule(facts: Mapping[str, np.ndarray], settings) -> np.ndarray:
    shape = np.shape(facts["n_control"])
    chosen = np.full(shape, -1)
    for index, rule in enumerate(DECISION_MATRIX):
        with np.errstate(invalid="ignore"):
            fires = np.asarray(rule.applies(facts, settings), dtype=bool) & (chosen < 0)
        chosen = np.where(fires, index, chosen)
    return chosen


def decide(stats, settings: "EvaluationSettings | None" = None, capital_pct: float | None = None,
           strategy_capital_pct: float | None = None, plan: ExperimentPlan | None = None) -> Decision:
    """The action and the rule that fired for one experiment's statistics (an ExperimentStatistics
    or its flat row mapping), plus capital compliance findings. ``plan`` adds the planned end
    date to the budget (None: the trade budget alone)."""
    settings = settings if settings is not None else stats.settings
    plan = plan if plan is not None else getattr(stats, "plan", None)
    facts = _facts(stats, plan)
    rule = DECISION_MATRIX[int(_first_rule(facts, settings))]
    scalars = {k: float(v) for k, v in facts.items()}
    evidence = {k: (None if not np.isfinite(scalars[k]) else scalars[k]) for k in rule.uses if k in scalars}
    return Decision(rule.action, rule.because(scalars, settings, plan), rule.name,
                    capital_findings(capital_pct, strategy_capital_pct), evidence)


def decide_batch(batch, planned_end_reached=None) -> np.ndarray:
    """Actions for every experiment of a BatchStatistics (vectorised; no sentences)."""
    facts = dict(batch.columns)
    facts["planned_end_reached"] = np.broadcast_to(
        np.asarray(0.0 if planned_end_reached is None else planned_end_reached, dtype=float), facts["n_control"].shape)
    chosen = _first_rule(facts, batch.settings)
    return np.array([rule.action for rule in DECISION_MATRIX])[chosen]
