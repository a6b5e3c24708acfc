"""The runbook decision matrix as data: ordered rules, first match wins, thresholds from settings.

Runbooks 000/001: variant +10% and p < 0.05 (and Cohen's d > 0.2) -> promote; variant -10% ->
rollback; no significance after 500 trades -> no difference; otherwise extend; fewer than 100
trades per group -> extend (insufficient data). Additions the issue asks for: significance is
the always-valid test (daily looks), Holm-adjusted across the decision metrics; a sample-ratio
mismatch blocks promotion; capital over the limits is a compliance finding.

Predicates use only numpy element-wise operators, so the same rule works on one experiment
(``decide``) and on a whole batch (``decide_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

if TYPE_CHECKING:
    from .statistics.settings import EvaluationSettings

ACTIONS = ("promote", "rollback", "no-difference", "extend")

# Capital limits in percent of total capital (runbook 000 FINRAComplianceMonitor; at or under is
# compliant): an experiment's whole allocation, and the largest allocation of one strategy version
# (control or variant arm) across the strategy's running experiments.
CAPITAL_LIMITS = {
    "experiment": (10.0, "experiment allocation", "of total capital"),
    "strategy": (5.0, "single-strategy allocation", "of total capital"),
}


def _significant(s, c):
    return s["holm_mean_pnl"] < c.alpha


def _guardrail_breached(s, c):
    """Variant significantly worse on a risk metric (Holm-adjusted): promotion must not buy that."""
    return ((s["holm_sharpe"] < c.alpha) & (s["sharpe_diff"] < 0)) | ((s["holm_win_rate"] < c.alpha) & (s["win_rate_diff"] < 0))


def _smallest_group(s):
    return np.minimum(s["n_control"], s["n_variant"])


def _effect(s, c):
    if s["lift_absolute_basis"] > 0:
        return f"mean difference {s['mean_difference']:+.4g} per trade vs the absolute threshold ±{s['absolute_threshold']:.4g}"
    return f"lift {s['lift']:+.1%} vs ±{c.lift_threshold:.0%}"


def _p(s, c):
    return f"p={s['p_value']:.3g} ({'always-valid' if c.sequential else 'fixed-horizon'}; Holm-adjusted {s['holm_mean_pnl']:.3g})"


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    applies: Callable[[Mapping[str, Any], Any], Any]
    because: Callable[[Mapping[str, Any], Any], str]


DECISION_MATRIX: tuple[Rule, ...] = (
    Rule("insufficient-data", "extend",
         lambda s, c: _smallest_group(s) < c.min_trades_per_group,
         lambda s, c: (f"insufficient data: control {s['n_control']:.0f} and variant {s['n_variant']:.0f} trades, "
                       f"the runbook needs at least {c.min_trades_per_group} per group; keep collecting")),
    Rule("significant-loss", "rollback",
         lambda s, c: (s["lift_vs_threshold"] <= -1) & (_significant(s, c) | (not c.rollback_requires_significance)),
         lambda s, c: f"variant is worse: {_effect(s, c)}, {_p(s, c)}; roll back now"),
    Rule("sample-ratio-mismatch", "extend",
         lambda s, c: s["srm_p_value"] < c.srm_threshold,
         lambda s, c: (f"promotion blocked: sample-ratio mismatch (chi-square p={s['srm_p_value']:.3g} < {c.srm_threshold}, "
                       f"{s['n_control']:.0f}/{s['n_variant']:.0f} trades against the configured split); "
                       f"fix trade assignment before trusting any result")),
    Rule("significant-win", "promote",
         lambda s, c: (s["lift_vs_threshold"] >= 1) & _significant(s, c) & (s["cohen_d"] > c.min_cohen_d)
         & ~_guardrail_breached(s, c),
         lambda s, c: f"variant is better: {_effect(s, c)}, {_p(s, c)}, Cohen's d {s['cohen_d']:.3f} > {c.min_cohen_d}; promote"),
    Rule("no-difference-after-max-trades", "no-difference",
         lambda s, c: (_smallest_group(s) >= c.no_difference_after_trades) & ~_significant(s, c),
         lambda s, c: (f"no significant difference after {_smallest_group(s):.0f}+ trades per group ({_p(s, c)}); "
                       f"not proof of no effect: power at the minimum detectable effect ±{s['mde_effect']:.4g} per trade was "
                       f"{s['power_sequential_at_mde' if c.sequential else 'power_fixed_at_mde']:.0%}, equivalence (TOST, "
                       f"fixed-horizon) within ±{s['tost_bound']:.4g}: p={s['tost_p']:.3g}"
                       f" ({'shown' if s['tost_p'] < c.alpha else 'not shown'})")),
    Rule("promotion-guardrail", "extend",
         lambda s, c: (s["lift_vs_threshold"] >= 1) & _significant(s, c) & _guardrail_breached(s, c),
         lambda s, c: (f"mean PnL is better ({_effect(s, c)}) but the variant is significantly worse on Sharpe "
                       f"(Holm p={s['holm_sharpe']:.3g}) or win rate (Holm p={s['holm_win_rate']:.3g}); not promoted, extend")),
    Rule("keep-collecting", "extend",
         lambda s, c: np.ones_like(s["n_control"], dtype=bool),
         lambda s, c: (f"no rule fired yet: {_effect(s, c)}, {_p(s, c)}, Cohen's d {s['cohen_d']:.3f}; "
                       f"extend until a rule fires or {c.no_difference_after_trades} trades per group")),
)


@dataclass(frozen=True)
class Decision:
    action: str
    rule: str  # the sentence
    rule_name: str
    compliance_findings: tuple[str, ...] = field(default_factory=tuple)


def _facts(stats) -> dict[str, np.ndarray]:
    row = stats.row if hasattr(stats, "row") and not callable(stats.row) else stats
    return {k: np.asarray(np.nan if v is None else v, dtype=float) for k, v in row.items()
            if isinstance(v, (int, float, np.floating, np.integer)) or v is None}


def _first_rule(facts: Mapping[str, np.ndarray], settings) -> np.ndarray:
    shape = np.shape(facts["n_control"])
    chosen = np.full(shape, -1)
    for index, rule in enumerate(DECISION_MATRIX):
        with np.errstate(invalid="ignore"):
            fires = np.asarray(rule.applies(facts, settings), dtype=bool) & (chosen < 0)
        chosen = np.where(fires, index, chosen)
    return chosen


def capital_findings(capital_pct: float | None, strategy_capital_pct: float | None) -> tuple[str, ...]:
    """Compliance findings for capital over the per-experiment / per-strategy limits (FINRA 15c3-5)."""
    findings = []
    for scope, value in (("experiment", capital_pct), ("strategy", strategy_capital_pct)):
        if value is None:
            continue
        limit, what, of_what = CAPITAL_LIMITS[scope]
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{scope} capital percentage must be a finite non-negative number, got {value!r}")
        if value > limit:
            findings.append(f"compliance: {what} {value:g}% {of_what} exceeds the {limit:g}% limit")
    return tuple(findings)


def decide(stats, settings: "EvaluationSettings | None" = None, capital_pct: float | None = None,
           strategy_capital_pct: float | None = None) -> Decision:
    """The action and the rule that fired for one experiment's statistics (an ExperimentStatistics
    or its flat row mapping), plus capital compliance findings."""
    settings = settings if settings is not None else stats.settings
    facts = _facts(stats)
    rule = DECISION_MATRIX[int(_first_rule(facts, settings))]
    scalars = {k: float(v) for k, v in facts.items()}
    return Decision(rule.action, rule.because(scalars, settings), rule.name,
                    capital_findings(capital_pct, strategy_capital_pct))


def decide_batch(batch) -> np.ndarray:
    """Actions for every experiment of a BatchStatistics (vectorised; no sentences)."""
    chosen = _first_rule(batch.columns, batch.settings)
    return np.array([rule.action for rule in DECISION_MATRIX])[chosen]
