"""Statistics engine for strategy A/B experiments (issues 6 and 17): pure functions, no I/O.

``evaluate_experiment`` runs the whole battery on one experiment and applies the decision
matrix; ``evaluate_batch`` does the same arithmetic for many experiments at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..decision import ExperimentPlan, decide
from ..formatting import count, number, p_value, percent, signed
from .battery import RUNBOOK_TESTS
from .batch import DECISION_FAMILY, BatchStatistics, evaluate_batch
from .inputs import ExperimentInputError, pnl_array, split_fractions, timestamps_array
from .settings import EvaluationSettings
from .sharpe import deflated_sharpe_ratio, expected_max_sharpe

__all__ = ["EvaluationSettings", "ExperimentStatistics", "ExperimentInputError", "BatchStatistics", "ExperimentPlan",
           "evaluate_experiment", "evaluate_batch"]

CORRECTION_NAMES = {"holm": "Holm", "benjamini-hochberg": "Benjamini-Hochberg"}


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


def _int(value):
    return None if value is None or not math.isfinite(value) else int(round(value))


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
    plan: ExperimentPlan | None = None
    evidence: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row, split, settings, capital_pct=None, strategy_capital_pct=None, extras=None, plan=None):
        verdict = decide(row, settings, capital_pct, strategy_capital_pct, plan)
        return cls(row, split, settings, verdict.action, verdict.rule, verdict.rule_name,
                   verdict.compliance_findings, extras or {}, plan, verdict.evidence)

    @classmethod
    def from_batch(cls, batch: BatchStatistics, i: int, **decide_kwargs):
        """Experiment ``i`` of a batch, decision included."""
        return cls.from_row(batch.row(i), batch.split, batch.settings, **decide_kwargs)

    @property
    def terminal(self) -> bool:
        return self.decision not in ("extend",)

    @property
    def test(self) -> str:
        basis = " on CUPED-adjusted PnL" if self.row.get("cuped_used") else ""
        if self.settings.sequential:
            return (f"sequential Welch t{basis}: always-valid confidence sequence (Waudby-Smith et al.; GrowthBook), "
                    f"tuning {self.settings.sequential_tuning:g}")
        return f"Welch t{basis}, fixed-horizon (valid for one pre-planned look only)"

    @property
    def lift_note(self) -> str:
        r = self.row
        if r["lift_absolute_basis"]:
            return (f"|control mean| {number(abs(r['mean_control']))} is under {self.settings.near_zero_control_mean} "
                    f"control sd: the relative lift is unstable, so the ±{percent(self.settings.lift_threshold)} rules "
                    f"use the absolute threshold ±{number(r['absolute_threshold'])} PnL per trade"
                    + (" (configured)" if self.settings.absolute_threshold is not None
                       else f" (Cohen's d {self.settings.min_cohen_d} x pooled sd)"))
        return "relative lift: mean difference / |control mean|"

    @property
    def correction(self) -> str:
        return CORRECTION_NAMES[self.settings.multiple_testing]

    def as_dict(self) -> dict:
        r, s = self.row, self.settings
        runbook = "runbook_test" in r
        n = (r["n_control"], r["n_variant"])
        kind = "always_valid" if s.sequential else "fixed_horizon"
        out = {
            "decision": self.decision, "rule": self.rule, "rule_name": self.rule_name, "terminal": self.terminal,
            "evidence": self.evidence, "compliance_findings": list(self.compliance_findings),
            "test": self.test, "p_value": r["p_value"], "ci": [r["ci_low"], r["ci_high"]],
            "p_value_adjusted": r["adjusted_mean_pnl"], "significant": bool(r["adjusted_mean_pnl"] < s.alpha),
            "lift": r["lift"], "lift_basis": "absolute" if r["lift_absolute_basis"] else "relative",
            "lift_note": self.lift_note, "lift_vs_threshold": r["lift_vs_threshold"],
            "cohen_d": r["cohen_d"], "hedges_g": r["hedges_g"], "effect_d": r["effect_d"],
            "material_effect": r["material_effect"],
            "n_control": _int(r["n_control"]), "n_variant": _int(r["n_variant"]),
            "mean_control": r["mean_control"], "mean_variant": r["mean_variant"],
            "sd_control": r["sd_control"], "sd_variant": r["sd_variant"], "mean_difference": r["mean_difference"],
            "estimate": {"difference": r["estimate_difference"], "se": r["estimate_se"], "df": r["estimate_df"],
                         "basis": "CUPED-adjusted PnL" if r["cuped_used"] else "raw PnL"},
            "cuped": self._cuped(),
            "srm_p_value": r["srm_p_value"], "srm_statistic": r["srm_statistic"],
            "srm_mismatch": bool(r["srm_p_value"] < s.srm_threshold),
            "split": [100 * self.split[0], 100 * self.split[1]],
            "fixed_horizon": {"label": "Welch t on raw PnL, fixed-horizon (inflated false positives if looked at daily)",
                              "t": r["welch_t"], "df": r["welch_df"], "se": r["welch_se"], "p_value": r["welch_p"],
                              "ci": [r["welch_ci_low"], r["welch_ci_high"]]},
            "sequential": {"label": "always-valid (valid at every daily look)", "p_value": r["sequential_p"],
                           "ci": [r["sequential_ci_low"], r["sequential_ci_high"]], "tuning": s.sequential_tuning},
            "multiple_testing": {
                "method": s.multiple_testing, "decision_family": kind,
                "always_valid": {m: {"p_value": r[p], "adjusted": r[f"sequential_adjusted_{m}"]} for m, p in
                                 zip(DECISION_FAMILY, ("sequential_p", "sharpe_sequential_p", "win_rate_sequential_p"))},
                "fixed_horizon": {m: {"p_value": r[p], "adjusted": r[f"fixed_adjusted_{m}"]} for m, p in
                                  zip(DECISION_FAMILY, ("fixed_p", "sharpe_p", "win_rate_p"))},
                "note": (f"{self.correction} across mean PnL, Sharpe and win rate, within one kind of p-value: the "
                         f"decision reads the {kind.replace('_', '-')} family; the other family is corrected among "
                         f"itself and reported only"),
            },
            "power": self._power(n),
            "budget": {"trade_budget_control": _int(r["trade_budget_control"]),
                       "trade_budget_variant": _int(r["trade_budget_variant"]),
                       "trades_reached": bool(r["trade_budget_reached"]),
                       "planned_end": self.plan.as_dict() if self.plan else None,
                       "note": (f"trades each group needs for {percent(s.power)} power against the material effect "
                                f"(from {s.no_difference_after_trades} to {s.max_trades_per_group:,} per group), or the "
                                f"planned end date, whichever comes first; then the decision is terminal")},
            "equivalence_tost": {"label": "Welch TOST, fixed-horizon", "bound": r["tost_bound"], "p_value": r["tost_p"],
                                 "p_lower": r["tost_p_lower"], "p_upper": r["tost_p_upper"],
                                 "equivalent": bool(r["tost_p"] < s.alpha)},
            "bayesian": {"prior": "flat" if s.bayesian_prior_sd is None else f"normal(0, {s.bayesian_prior_sd:g})",
                         "chance_to_beat_control": r["bayes_chance_to_beat_control"],
                         "expected_loss_variant": r["bayes_expected_loss_variant"],
                         "expected_loss_control": r["bayes_expected_loss_control"],
                         "posterior_mean": r["bayes_posterior_mean"], "posterior_sd": r["bayes_posterior_sd"],
                         "credible_interval": [r["bayes_ci_low"], r["bayes_ci_high"]],
                         "note": "reported beside the decision, which stays frequentist; losses in PnL per trade"},
            "sharpe": {"period": "per trade (not annualised)", "control": r["sharpe_control"],
                       "variant": r["sharpe_variant"], "difference": r["sharpe_diff"], "se": r["sharpe_se"],
                       "se_lo_iid_normal": r["sharpe_se_lo_iid_normal"], "z": r["sharpe_z"], "p_value": r["sharpe_p"],
                       "sequential_p_value": r["sharpe_sequential_p"],
                       "min_track_record": {"control": r["min_trl_control"], "variant": r["min_trl_variant"],
                                            "variant_vs_control": r["min_trl_variant_vs_control"],
                                            "probability": 1 - s.alpha},
                       "note": "Lo (2002) SE, non-normal form (skewness, ordinary kurtosis); disjoint trade sets"},
            "psr": {"benchmark_sharpe": s.psr_benchmark_sharpe, "control": r["psr_control"], "variant": r["psr_variant"]},
            "moments": {"skewness_control": r["skewness_control"], "skewness_variant": r["skewness_variant"],
                        "kurtosis_control": r["kurtosis_control"], "kurtosis_variant": r["kurtosis_variant"]},
            "win_rate": {"control": r["win_rate_control"], "variant": r["win_rate_variant"],
                         "difference": r["win_rate_diff"], "z": r["win_rate_z"], "p_value": r["win_rate_p"],
                         "sequential_p_value": r["win_rate_sequential_p"]},
            "runbook": self._runbook() if runbook else None,
            "outliers": self._outliers() if runbook else None,
            "extras": self.extras,
            "settings": s.as_dict(),
        }
        return _clean(out)

    def _cuped(self) -> dict | None:
        r = self.row
        if not r["cuped_used"]:
            return None
        return {"covariate": "each trade's pre-period PnL", "theta": r["cuped_theta"],
                "variance_reduction": r["cuped_variance_reduction"], "difference": r["cuped_difference"],
                "se": r["cuped_se"], "se_raw": r["welch_se"], "p_value_fixed_horizon": r["cuped_p"],
                "note": "GrowthBook's regression adjustment: one theta pooled over both groups"}

    def _power(self, n) -> dict:
        r, s = self.row, self.settings
        out = {"target": s.power, "minimum_detectable_effect": r["mde_effect"], "observed_effect": r["estimate_difference"],
               "power_at_mde": {"fixed_horizon": r["power_fixed_at_mde"], "sequential": r["power_sequential_at_mde"]}}
        for method in ("fixed", "sequential"):
            for label in ("observed", "mde"):
                out[f"{method}_{label}"] = _still_needed(r[f"needed_total_{method}_{label}"], n, self.split)
        out["note"] = ("the minimum detectable effect is the material effect the decision acts on; fixed-horizon figures "
                       "are exact for Welch's t (noncentral t), sequential ones asymptotic; needed totals use the "
                       "configured split and the observed variances; zero effect -> None (no n suffices)")
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

    def table(self) -> list[tuple[str, str, str, str, str]]:
        """Rows (statistic, control, variant, value, note) for a markdown report, numbers rounded."""
        d, r, s = self.as_dict(), self.row, self.settings
        mt = d["multiple_testing"]
        kind = "always-valid" if s.sequential else "fixed-horizon"
        total = (d["n_control"] or 0) + (d["n_variant"] or 0)
        rows = [
            ("trades", count(d["n_control"]), count(d["n_variant"]), count(total),
             f"configured split {number(d['split'][0])}/{number(d['split'][1])}"),
            ("mean PnL per trade", number(d["mean_control"]), number(d["mean_variant"]), signed(d["mean_difference"]),
             "difference variant - control, raw PnL"),
        ]
        if d["cuped"]:
            c = d["cuped"]
            rows.append(("CUPED-adjusted difference", "", "", signed(c["difference"]),
                         f"pre-period PnL as covariate, theta {number(c['theta'])}: variance "
                         f"{percent(c['variance_reduction'])} lower (se {number(c['se'])} vs {number(c['se_raw'])} raw)"))
        adjusted = mt["always_valid" if s.sequential else "fixed_horizon"]["mean_pnl"]["adjusted"]
        verdict = "significant" if d["significant"] else "not significant"
        if not d["significant"] and d["p_value"] is not None and d["p_value"] < s.alpha:
            verdict += f" after {self.correction} correction for 3 tests"
        rows += [
            ("decision test", "", "", p_value(d["p_value"]),
             f"{d['test']}; {self.correction}-adjusted {p_value(adjusted)}: {verdict}"),
            ("decision interval", "", "", f"[{number(d['ci'][0])}, {number(d['ci'][1])}]",
             f"{kind}, for the mean difference per trade"),
            ("fixed-horizon Welch t", "", "", p_value(d["fixed_horizon"]["p_value"]), d["fixed_horizon"]["label"]),
            ("lift", "", "", percent(d["lift"], signed_=True), d["lift_note"]),
            ("Cohen's d / Hedges' g", "", "", f"{signed(d['cohen_d'])} / {signed(d['hedges_g'])}",
             "signed, variant - control"),
            ("material effect", "", "", f"±{number(d['material_effect'])}",
             f"PnL per trade: the larger of {percent(s.lift_threshold)} of |control mean| and Cohen's d "
             f"{number(s.min_cohen_d)} x pooled sd; the smallest effect the decision acts on"),
            ("sample-ratio mismatch", count(total * self.split[0]), count(total * self.split[1]),
             p_value(d["srm_p_value"]),
             f"chi-square {number(d['srm_statistic'])} against the split (expected counts shown); "
             + ("mismatch: assignment is broken" if d["srm_mismatch"] else "ok")),
            ("Sharpe per trade", number(d["sharpe"]["control"]), number(d["sharpe"]["variant"]),
             p_value(d["sharpe"]["p_value"]),
             f"difference {signed(d['sharpe']['difference'])}; always-valid p {p_value(d['sharpe']['sequential_p_value'])}; "
             + d["sharpe"]["note"]),
            ("probabilistic Sharpe", percent(d["psr"]["control"]), percent(d["psr"]["variant"]), "",
             f"P(true Sharpe > {number(s.psr_benchmark_sharpe)})"),
            ("minimum track record", count(d["sharpe"]["min_track_record"]["control"]),
             count(d["sharpe"]["min_track_record"]["variant"]),
             count(d["sharpe"]["min_track_record"]["variant_vs_control"]),
             f"trades for {percent(1 - s.alpha)} confidence that Sharpe > {number(s.psr_benchmark_sharpe)} "
             f"(value: variant's Sharpe > control's); n/a: never at this Sharpe"),
        ]
        if "deflated_sharpe" in d["extras"]:
            ds = d["extras"]["deflated_sharpe"]
            rows.append(("deflated Sharpe (variant)", "", "", percent(ds["dsr"]),
                         f"P(true Sharpe > {number(ds['expected_max_sharpe'])}, what the best of {count(ds['trials'])} "
                         f"variants of {ds['strategy']} shows by luck)"))
        rows += [
            ("win rate", percent(d["win_rate"]["control"]), percent(d["win_rate"]["variant"]),
             p_value(d["win_rate"]["p_value"]),
             f"two-proportion z, fixed-horizon; always-valid p {p_value(d['win_rate']['sequential_p_value'])}"),
        ]
        for family, label in (("always_valid", "always-valid"), ("fixed_horizon", "fixed-horizon")):
            f = mt[family]
            used = "the decision's family" if family == mt["decision_family"] else "reported only"
            rows.append((f"{self.correction}-adjusted p, {label}", "", "",
                         " / ".join(p_value(f[m]["adjusted"]) for m in DECISION_FAMILY),
                         f"mean PnL / Sharpe / win rate, corrected among {label} p-values only ({used})"))
        power_key = "sequential" if s.sequential else "fixed_horizon"
        needed = d["power"]["sequential_mde" if s.sequential else "fixed_mde"]
        rows += [
            ("power against the material effect", "", "", percent(d["power"]["power_at_mde"][power_key]),
             f"{kind} test at today's trades; {percent(s.power)} needs "
             + (f"{count(needed['total_trades_needed'])} trades in all" if needed["total_trades_needed"] else "n/a")),
            ("trade budget", count(d["budget"]["trade_budget_control"]), count(d["budget"]["trade_budget_variant"]),
             "reached" if d["budget"]["trades_reached"] else "not reached", d["budget"]["note"]),
            ("equivalence (TOST)", "", "", p_value(d["equivalence_tost"]["p_value"]),
             f"{d['equivalence_tost']['label']}, within ±{number(d['equivalence_tost']['bound'])}"),
            ("Bayesian: chance to beat control", "", "", percent(d["bayesian"]["chance_to_beat_control"]),
             f"expected loss per trade if the variant ships {number(d['bayesian']['expected_loss_variant'])}, if the "
             f"control stays {number(d['bayesian']['expected_loss_control'])} ({d['bayesian']['prior']} prior); "
             "beside the decision, not part of it"),
        ]
        if d["runbook"]:
            rb, ol = d["runbook"], d["outliers"]
            rows += [
                ("normality p (K2)", p_value(rb["normality"]["control"]["p_value"]),
                 p_value(rb["normality"]["variant"]["p_value"]), "", "D'Agostino-Pearson"),
                ("Levene p (median)", "", "", p_value(rb["levene"]["p_value"]), ""),
                ("runbook-picked test", "", "", p_value(rb["picked_p_value"]), rb["picked_test"] + "; " + rb["note"]),
                ("IQR outliers", count(ol["control"]), count(ol["variant"]), p_value(ol["without"]["welch_p"]),
                 "Welch p without them"),
            ]
        rows.append(("decision", "", "", f"**{d['decision']}**", d["rule"]))
        return rows


def _lag1_autocorrelation(x: np.ndarray) -> float | None:
    if x.size < 3 or np.ptp(x) == 0:
        return None
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


def strategy_trials(sharpes, strategy: str, sr, n, skewness, kurtosis) -> dict:
    """The deflated Sharpe ratio of one variant among every variant tried for its strategy
    (``sharpes``: their per-trade Sharpe ratios, this one included)."""
    values = np.asarray([x for x in sharpes if x is not None and math.isfinite(x)], dtype=float)
    trials = max(len(values), 1)
    variance = float(values.var(ddof=1)) if len(values) > 1 else 0.0
    return _clean({"strategy": strategy, "trials": trials, "trial_sharpe_variance": variance,
                   "expected_max_sharpe": float(expected_max_sharpe(trials, variance)),
                   "dsr": float(deflated_sharpe_ratio(sr, n, skewness, kurtosis, trials, variance))})


def evaluate_experiment(control_pnl, variant_pnl, split=(90, 10), settings: EvaluationSettings = EvaluationSettings(),
                        control_ts=None, variant_ts=None, capital_pct: float | None = None,
                        strategy_capital_pct: float | None = None, control_pre=None, variant_pre=None,
                        plan: ExperimentPlan | None = None, strategy_sharpes=None,
                        strategy: str = "") -> ExperimentStatistics:
    """The full battery and the decision for one experiment, from today's cumulative trades.

    Stateless: a daily flow passes all trades so far; the always-valid test needs nothing else.
    With timestamps, each group's lag-1 autocorrelation (in time order) is reported, since the
    Sharpe standard error assumes independent trades. ``control_pre``/``variant_pre``: each trade's
    pre-period PnL (CUPED). ``plan``: the experiment's dates (its budget). ``strategy_sharpes``:
    the per-trade Sharpe ratios of the other variants tried for this strategy (deflated Sharpe).
    """
    control, variant = pnl_array(control_pnl, "control_pnl"), pnl_array(variant_pnl, "variant_pnl")
    fractions = split_fractions(split)
    extras = {}
    for name, pnl, ts in (("control", control, control_ts), ("variant", variant, variant_ts)):
        times = timestamps_array(ts, pnl, f"{name}_ts")
        if times is not None:
            extras[f"lag1_autocorrelation_{name}"] = _lag1_autocorrelation(pnl[np.argsort(times, kind="stable")])
    pre = {}
    if control_pre is not None or variant_pre is not None:
        if control_pre is None or variant_pre is None:
            raise ExperimentInputError("give the pre-period PnL of both groups (control_pre and variant_pre) or of neither")
        pre = {"control_pre": pnl_array(control_pre, "control_pre")[None, :],
               "variant_pre": pnl_array(variant_pre, "variant_pre")[None, :]}
    batch = evaluate_batch(control[None, :], variant[None, :], split, settings, **pre)
    row = batch.row(0)
    if strategy_sharpes is not None:
        extras["deflated_sharpe"] = strategy_trials([*strategy_sharpes, row["sharpe_variant"]], strategy,
                                                    row["sharpe_variant"], row["n_variant"], row["skewness_variant"],
                                                    row["kurtosis_variant"])
    return ExperimentStatistics.from_row(row, fractions, settings, capital_pct, strategy_capital_pct, extras, plan)
