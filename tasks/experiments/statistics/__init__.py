"""Statistics engine for strategy A/B experiments (issue 6): pure functions, no I/O.

``evaluate_experiment`` runs the whole battery on one experiment and applies the decision
matrix; ``evaluate_batch`` does the same arithmetic for many experiments at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..decision import decide
from .battery import RUNBOOK_TESTS
from .batch import BatchStatistics, evaluate_batch
from .inputs import ExperimentInputError, pnl_array, split_fractions, timestamps_array
from .settings import EvaluationSettings

__all__ = ["EvaluationSettings", "ExperimentStatistics", "ExperimentInputError", "BatchStatistics",
           "evaluate_experiment", "evaluate_batch"]


def _clean(value):
    """JSON-safe: plain floats, None for undefined (NaN/inf), recursively."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _still_needed(needed_total: float, n_total: float, fractions) -> dict:
    if not math.isfinite(needed_total):
        return {"total_trades_needed": None, "additional_control": None, "additional_variant": None}
    return {"total_trades_needed": math.ceil(needed_total),
            "additional_control": max(0, math.ceil(needed_total * fractions[0]) - int(n_total[0])),
            "additional_variant": max(0, math.ceil(needed_total * fractions[1]) - int(n_total[1]))}


@dataclass(frozen=True)
class ExperimentStatistics:
    """One experiment's full battery (``row``: flat named values) and its decision."""

    row: dict[str, float]
    split: tuple[float, float]
    settings: EvaluationSettings
    decision: str
    rule: str
    rule_name: str
    compliance_findings: tuple[str, ...] = ()
    extras: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row, split, settings, capital_pct=None, strategy_capital_pct=None, extras=None):
        verdict = decide(row, settings, capital_pct, strategy_capital_pct)
        return cls(row, split, settings, verdict.action, verdict.rule, verdict.rule_name,
                   verdict.compliance_findings, extras or {})

    @property
    def test(self) -> str:
        if self.settings.sequential:
            return (f"sequential Welch t: always-valid confidence sequence (Waudby-Smith et al.; GrowthBook), "
                    f"tuning {self.settings.sequential_tuning:g}")
        return "Welch t, fixed-horizon (valid for one pre-planned look only)"

    @property
    def lift_note(self) -> str:
        r = self.row
        if r["lift_absolute_basis"]:
            return (f"|control mean| {abs(r['mean_control']):.4g} is under {self.settings.near_zero_control_mean} control sd: "
                    f"the relative lift is unstable, so the ±{self.settings.lift_threshold:.0%} rules use the absolute "
                    f"threshold ±{r['absolute_threshold']:.4g} PnL per trade"
                    + (" (configured)" if self.settings.absolute_threshold is not None
                       else f" (Cohen's d {self.settings.min_cohen_d} x pooled sd)"))
        return "relative lift: mean difference / |control mean|"

    def as_dict(self) -> dict:
        r, s = self.row, self.settings
        runbook = "runbook_test" in r
        n = (r["n_control"], r["n_variant"])
        out = {
            "decision": self.decision, "rule": self.rule, "rule_name": self.rule_name,
            "compliance_findings": list(self.compliance_findings),
            "test": self.test, "p_value": r["p_value"], "ci": [r["ci_low"], r["ci_high"]],
            "p_value_holm": r["holm_mean_pnl"], "significant": bool(r["holm_mean_pnl"] < s.alpha),
            "lift": r["lift"], "lift_basis": "absolute" if r["lift_absolute_basis"] else "relative",
            "lift_note": self.lift_note, "lift_vs_threshold": r["lift_vs_threshold"],
            "cohen_d": r["cohen_d"], "hedges_g": r["hedges_g"],
            "n_control": r["n_control"], "n_variant": r["n_variant"],
            "mean_control": r["mean_control"], "mean_variant": r["mean_variant"],
            "sd_control": r["sd_control"], "sd_variant": r["sd_variant"], "mean_difference": r["mean_difference"],
            "srm_p_value": r["srm_p_value"], "srm_statistic": r["srm_statistic"],
            "srm_mismatch": bool(r["srm_p_value"] < s.srm_threshold),
            "split": [100 * self.split[0], 100 * self.split[1]],
            "fixed_horizon": {"label": "Welch t, fixed-horizon (inflated false positives if looked at daily)",
                              "t": r["welch_t"], "df": r["welch_df"], "se": r["welch_se"], "p_value": r["welch_p"],
                              "ci": [r["welch_ci_low"], r["welch_ci_high"]]},
            "sequential": {"label": "always-valid (valid at every daily look)", "p_value": r["sequential_p"],
                           "ci": [r["sequential_ci_low"], r["sequential_ci_high"]], "tuning": s.sequential_tuning},
            "power": self._power(n),
            "equivalence_tost": {"label": "Welch TOST, fixed-horizon", "bound": r["tost_bound"], "p_value": r["tost_p"],
                                 "p_lower": r["tost_p_lower"], "p_upper": r["tost_p_upper"],
                                 "equivalent": bool(r["tost_p"] < s.alpha)},
            "sharpe": {"period": "per trade (not annualised)", "control": r["sharpe_control"],
                       "variant": r["sharpe_variant"], "difference": r["sharpe_diff"], "se": r["sharpe_se"],
                       "se_lo_iid_normal": r["sharpe_se_lo_iid_normal"], "z": r["sharpe_z"], "p_value": r["sharpe_p"],
                       "note": "Lo (2002) SE, non-normal form (skewness, ordinary kurtosis); disjoint trade sets"},
            "psr": {"benchmark_sharpe": s.psr_benchmark_sharpe, "control": r["psr_control"], "variant": r["psr_variant"]},
            "moments": {"skewness_control": r["skewness_control"], "skewness_variant": r["skewness_variant"],
                        "kurtosis_control": r["kurtosis_control"], "kurtosis_variant": r["kurtosis_variant"]},
            "win_rate": {"control": r["win_rate_control"], "variant": r["win_rate_variant"],
                         "difference": r["win_rate_diff"], "z": r["win_rate_z"], "p_value": r["win_rate_p"]},
            "holm": {"family": ["mean_pnl", "sharpe", "win_rate"], "mean_pnl": r["holm_mean_pnl"],
                     "sharpe": r["holm_sharpe"], "win_rate": r["holm_win_rate"]},
            "runbook": self._runbook() if runbook else None,
            "outliers": self._outliers() if runbook else None,
            "extras": self.extras,
            "settings": s.as_dict(),
        }
        return _clean(out)

    def _power(self, n) -> dict:
        r, s = self.row, self.settings
        out = {"target": s.power, "minimum_detectable_effect": r["mde_effect"], "observed_effect": r["mean_difference"],
               "power_at_mde": {"fixed_horizon": r["power_fixed_at_mde"], "sequential": r["power_sequential_at_mde"]}}
        for method in ("fixed", "sequential"):
            for label in ("observed", "mde"):
                out[f"{method}_{label}"] = _still_needed(r[f"needed_total_{method}_{label}"], n, self.split)
        out["note"] = "needed totals use the configured split and the observed variances; zero effect -> None (no n suffices)"
        return out

    def _runbook(self) -> dict:
        r, s = self.row, self.settings
        return {
            "normality": {g: {"test": "D'Agostino-Pearson K2", "statistic": r[f"normality_statistic_{g}"],
                              "p_value": r[f"normality_p_{g}"], "normal": bool(r[f"normality_p_{g}"] >= s.alpha)}
                          for g in ("control", "variant")},
            "levene": {"center": "median", "statistic": r["levene_statistic"], "p_value": r["levene_p"]},
            "student_t": {"t": r["student_t"], "p_value": r["student_p"]},
            "welch_t": {"t": r["welch_t"], "p_value": r["welch_p"]},
            "mann_whitney_u": {"u_variant": r["mann_whitney_u"], "p_value": r["mann_whitney_p"],
                               "common_language": r["mann_whitney_common_language"]},
            "picked_test": RUNBOOK_TESTS[int(r["runbook_test"])], "picked_p_value": r["runbook_p"],
            "note": "reported only: the decision uses Welch's t on raw PnL (no pre-test switch)",
        }

    def _outliers(self) -> dict:
        r = self.row
        return {"rule": f"Tukey fences, {self.settings.iqr_multiplier} x IQR",
                "control": r["outliers_control"], "variant": r["outliers_variant"],
                "with": {"mean_difference": r["mean_difference"], "lift": r["lift"], "welch_p": r["welch_p"],
                         "cohen_d": r["cohen_d"]},
                "without": {"n_control": r["without_outliers_n_control"], "n_variant": r["without_outliers_n_variant"],
                            "mean_difference": r["without_outliers_mean_difference"],
                            "lift": r["without_outliers_lift"], "welch_p": r["without_outliers_welch_p"],
                            "cohen_d": r["without_outliers_cohen_d"]},
                "note": "reported only: outliers are the tail PnL that matters"}

    def table(self) -> list[tuple[str, object, object, object, str]]:
        """Rows (statistic, control, variant, value or difference, note) for a markdown report."""
        d = self.as_dict()
        rows = [
            ("trades", d["n_control"], d["n_variant"], None, f"configured split {d['split'][0]:g}/{d['split'][1]:g}"),
            ("mean PnL per trade", d["mean_control"], d["mean_variant"], d["mean_difference"], "difference variant - control"),
            ("decision test", None, None, d["p_value"], d["test"]),
            ("confidence interval", None, None, d["ci"], "for the mean difference"),
            ("fixed-horizon Welch t", None, None, d["fixed_horizon"]["p_value"], d["fixed_horizon"]["label"]),
            ("lift", None, None, d["lift"], d["lift_note"]),
            ("Cohen's d / Hedges' g", None, None, [d["cohen_d"], d["hedges_g"]], "signed, variant - control"),
            ("sample-ratio mismatch", None, None, d["srm_p_value"], "mismatch" if d["srm_mismatch"] else "ok"),
            ("Sharpe per trade", d["sharpe"]["control"], d["sharpe"]["variant"], d["sharpe"]["p_value"], d["sharpe"]["note"]),
            ("probabilistic Sharpe", d["psr"]["control"], d["psr"]["variant"], None, "P(true Sharpe > benchmark)"),
            ("win rate", d["win_rate"]["control"], d["win_rate"]["variant"], d["win_rate"]["p_value"], "two-proportion z"),
            ("Holm-adjusted p (PnL, Sharpe, win rate)", None, None,
             [d["holm"]["mean_pnl"], d["holm"]["sharpe"], d["holm"]["win_rate"]], "decision family"),
            ("power at MDE", None, None, d["power"]["power_at_mde"], f"MDE ±{d['power']['minimum_detectable_effect']}"),
            ("equivalence (TOST)", None, None, d["equivalence_tost"]["p_value"], d["equivalence_tost"]["label"]),
        ]
        if d["runbook"]:
            rb, ol = d["runbook"], d["outliers"]
            rows += [
                ("normality p (K2)", rb["normality"]["control"]["p_value"], rb["normality"]["variant"]["p_value"], None,
                 "D'Agostino-Pearson"),
                ("Levene p (median)", None, None, rb["levene"]["p_value"], ""),
                ("runbook-picked test", None, None, rb["picked_p_value"], rb["picked_test"] + "; " + rb["note"]),
                ("IQR outliers", ol["control"], ol["variant"], ol["without"]["welch_p"], "Welch p without them"),
            ]
        rows.append(("decision", None, None, d["decision"], d["rule"]))
        return rows


def _lag1_autocorrelation(x: np.ndarray) -> float | None:
    if x.size < 3 or np.ptp(x) == 0:
        return None
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


def evaluate_experiment(control_pnl, variant_pnl, split=(90, 10), settings: EvaluationSettings = EvaluationSettings(),
                        control_ts=None, variant_ts=None, capital_pct: float | None = None,
                        strategy_capital_pct: float | None = None) -> ExperimentStatistics:
    """The full battery and the decision for one experiment, from today's cumulative trades.

    Stateless: a daily flow passes all trades so far; the always-valid test needs nothing else.
    With timestamps, each group's lag-1 autocorrelation (in time order) is reported, since the
    Sharpe standard error assumes independent trades.
    """
    control, variant = pnl_array(control_pnl, "control_pnl"), pnl_array(variant_pnl, "variant_pnl")
    fractions = split_fractions(split)
    extras = {}
    for name, pnl, ts in (("control", control, control_ts), ("variant", variant, variant_ts)):
        times = timestamps_array(ts, pnl, f"{name}_ts")
        if times is not None:
            extras[f"lag1_autocorrelation_{name}"] = _lag1_autocorrelation(pnl[np.argsort(times, kind="stable")])
    batch = evaluate_batch(control[None, :], variant[None, :], split, settings)
    return ExperimentStatistics.from_row(batch.row(0), fractions, settings, capital_pct, strategy_capital_pct, extras)
