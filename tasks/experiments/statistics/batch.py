"""The whole battery for many experiments at once: experiments along axis 0, trades along axis 1.

A group is a 2-D array (every experiment has the same number of trades) or a sequence of 1-D
arrays of any lengths (padded with NaN inside, masked everywhere); the single-experiment API is
this with one row, so both give the same numbers by construction. Work runs in row chunks so the
temporaries stay in cache and memory stays bounded.

The decision's estimate is the difference in mean PnL per trade, CUPED-adjusted when each trade
carries its pre-period PnL; its test is the always-valid sequential one (or Welch's t when
``sequential`` is off). The decision family (mean PnL, Sharpe, win rate) is corrected within one
kind of p-value: always-valid with always-valid, fixed-horizon with fixed-horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import battery, power, sharpe
from .bayesian import bayesian_summary
from .cuped import cuped_adjust, cuped_theta, pooled_mean
from .inputs import ExperimentInputError, covariate_matrix, pnl_matrix, split_fractions
from .moments import group_moments
from .multiple import adjust
from .proportions import win_rate_test
from .sequential import sequential_test
from .settings import EvaluationSettings
from .srm import srm_test
from .welch import cohen_d, hedges_g, pooled_variance, student_test, welch_test

CHUNK_ROWS = 64
DECISION_FAMILY = ("mean_pnl", "sharpe", "win_rate")  # the metrics a decision consults, corrected together
KINDS = ("sequential", "fixed")  # always-valid and fixed-horizon p-values: never mixed in one family


@dataclass(frozen=True)
class BatchStatistics:
    """Named columns, each an array with one value per experiment."""

    columns: dict[str, np.ndarray]
    split: tuple[float, float]
    settings: EvaluationSettings

    def __len__(self) -> int:
        return len(self.columns["n_control"])

    def row(self, i: int) -> dict[str, float]:
        return {name: col[i].item() for name, col in self.columns.items()}


def evaluate_batch(control_pnl, variant_pnl, split=(90, 10), settings: EvaluationSettings = EvaluationSettings(),
                   runbook_battery: bool = True, control_pre=None, variant_pre=None) -> BatchStatistics:
    """Statistics for every experiment (row); ``runbook_battery=False`` skips the report-only
    rank/normality/outlier part (the decision never uses it), e.g. for simulations.
    ``control_pre``/``variant_pre``: each trade's pre-period PnL (the CUPED covariate), same shapes."""
    control, valid_c = pnl_matrix(control_pnl, "control_pnl")
    variant, valid_v = pnl_matrix(variant_pnl, "variant_pnl")
    if control.shape[0] != variant.shape[0]:
        raise ExperimentInputError(f"control_pnl has {control.shape[0]} experiments but variant_pnl has {variant.shape[0]}")
    if (control_pre is None) != (variant_pre is None):
        raise ExperimentInputError("give the pre-period PnL of both groups (control_pre and variant_pre) or of neither")
    pre_c = covariate_matrix(control_pre, control, valid_c, "control_pre")
    pre_v = covariate_matrix(variant_pre, variant, valid_v, "variant_pre")
    fractions = split_fractions(split)

    def rows(array, s):
        return None if array is None else array[s:s + CHUNK_ROWS]

    chunks = [_evaluate_rows(control[s:s + CHUNK_ROWS], variant[s:s + CHUNK_ROWS], rows(valid_c, s), rows(valid_v, s),
                             rows(pre_c, s), rows(pre_v, s), fractions, settings, runbook_battery)
              for s in range(0, control.shape[0], CHUNK_ROWS)]
    columns = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    return BatchStatistics(columns, fractions, settings)


def _evaluate_rows(control, variant, valid_c, valid_v, pre_c, pre_v, fractions, cfg: EvaluationSettings,
                   runbook_battery: bool) -> dict[str, np.ndarray]:
    mc, mv = group_moments(control, valid_c), group_moments(variant, valid_v)
    n_total = mc.n + mv.n
    welch = welch_test(mc, mv, cfg.alpha)
    d = cohen_d(mc, mv)
    out = {
        "n_control": mc.n, "n_variant": mv.n, "mean_control": mc.mean, "mean_variant": mv.mean,
        "sd_control": mc.sd, "sd_variant": mv.sd, "mean_difference": welch["diff"],
        "welch_t": welch["t"], "welch_df": welch["df"], "welch_se": welch["se"], "welch_p": welch["p"],
        "welch_ci_low": welch["ci_low"], "welch_ci_high": welch["ci_high"],
        "cohen_d": d, "hedges_g": hedges_g(d, mc.n, mv.n),
    }
    estimate, ac, av = _estimate(out, control, variant, valid_c, valid_v, pre_c, pre_v, mc, mv, welch, cfg)
    seq = sequential_test(estimate["diff"], estimate["se"], n_total, cfg.alpha, cfg.sequential_tuning)
    out.update(estimate_difference=estimate["diff"], estimate_se=estimate["se"], estimate_df=estimate["df"],
               fixed_p=estimate["p"], fixed_ci_low=estimate["ci_low"], fixed_ci_high=estimate["ci_high"],
               sequential_p=seq["p"], sequential_ci_low=seq["ci_low"], sequential_ci_high=seq["ci_high"])
    decision_test = seq if cfg.sequential else estimate
    out["p_value"], out["ci_low"], out["ci_high"] = decision_test["p"], decision_test["ci_low"], decision_test["ci_high"]
    pooled_sd = np.sqrt(pooled_variance(mc, mv))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["effect_d"] = np.where(pooled_sd > 0, estimate["diff"] / np.where(pooled_sd > 0, pooled_sd, 1.0), np.nan)
    out.update(_lift(estimate["diff"], mc, pooled_sd, cfg))

    student = student_test(mc, mv, cfg.alpha)
    out.update(student_t=student["t"], student_p=student["p"])

    srm = srm_test(mc.n, mv.n, *fractions)
    out.update(srm_statistic=srm["statistic"], srm_p_value=srm["p"])

    out.update(_power(out, ac, av, n_total, fractions, cfg))

    sr = sharpe.sharpe_difference_test(mc, mv)
    out.update({f"sharpe_{k}": v for k, v in sr.items()})
    out["sharpe_sequential_p"] = sequential_test(sr["diff"], sr["se"], n_total, cfg.alpha, cfg.sequential_tuning)["p"]
    for name, m, s in (("control", mc, sr["control"]), ("variant", mv, sr["variant"])):
        out[f"psr_{name}"] = sharpe.probabilistic_sharpe_ratio(s, cfg.psr_benchmark_sharpe, m.n, m.skewness, m.kurtosis)
        out[f"skewness_{name}"], out[f"kurtosis_{name}"] = m.skewness, m.kurtosis
        out[f"min_trl_{name}"] = sharpe.min_track_record_length(s, cfg.psr_benchmark_sharpe, m.skewness, m.kurtosis,
                                                                1 - cfg.alpha)
    out["min_trl_variant_vs_control"] = sharpe.min_track_record_length(sr["variant"], sr["control"], mv.skewness,
                                                                       mv.kurtosis, 1 - cfg.alpha)

    wr = win_rate_test(mc, mv)
    out.update({f"win_rate_{k}": v for k, v in wr.items()})
    with np.errstate(invalid="ignore", divide="ignore"):
        wr_se = np.sqrt(wr["control"] * (1 - wr["control"]) / mc.n + wr["variant"] * (1 - wr["variant"]) / mv.n)
    out["win_rate_sequential_p"] = sequential_test(wr["diff"], wr_se, n_total, cfg.alpha, cfg.sequential_tuning)["p"]

    families = {"sequential": (out["sequential_p"], out["sharpe_sequential_p"], out["win_rate_sequential_p"]),
                "fixed": (out["fixed_p"], out["sharpe_p"], out["win_rate_p"])}
    for kind, family in families.items():
        adjusted = adjust(np.column_stack(family), cfg.multiple_testing)
        out.update({f"{kind}_adjusted_{metric}": adjusted[:, j] for j, metric in enumerate(DECISION_FAMILY)})
    kind = "sequential" if cfg.sequential else "fixed"
    out.update({f"adjusted_{metric}": out[f"{kind}_adjusted_{metric}"] for metric in DECISION_FAMILY})

    bayes = bayesian_summary(estimate["diff"], estimate["se"], cfg.bayesian_prior_sd, cfg.alpha)
    out.update({f"bayes_{k}": v for k, v in bayes.items()})

    if runbook_battery:
        out.update(_runbook(control, variant, valid_c, valid_v, mc, mv, cfg))
    return out


def _estimate(out, control, variant, valid_c, valid_v, pre_c, pre_v, mc, mv, welch, cfg: EvaluationSettings):
    """The decision's estimate: Welch on raw PnL, or on CUPED-adjusted PnL when the trades carry
    their pre-period PnL. Returns the test and the moments its variances come from."""
    nan = np.full(mc.n.shape, np.nan)
    if pre_c is None or not cfg.cuped:
        out.update(cuped_used=np.zeros(mc.n.shape), cuped_theta=nan, cuped_variance_reduction=nan,
                   cuped_difference=nan, cuped_se=nan, cuped_p=nan)
        return welch, mc, mv
    theta = cuped_theta(control, variant, pre_c, pre_v, valid_c, valid_v)
    centre = pooled_mean(pre_c, pre_v, valid_c, valid_v)
    ac = group_moments(cuped_adjust(control, pre_c, theta, centre), valid_c)
    av = group_moments(cuped_adjust(variant, pre_v, theta, centre), valid_v)
    adjusted = welch_test(ac, av, cfg.alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        reduction = 1.0 - adjusted["se"] ** 2 / welch["se"] ** 2
    out.update(cuped_used=np.ones(mc.n.shape), cuped_theta=theta, cuped_variance_reduction=reduction,
               cuped_difference=adjusted["diff"], cuped_se=adjusted["se"], cuped_p=adjusted["p"])
    return adjusted, ac, av


def _lift(diff, mc, pooled_sd, cfg: EvaluationSettings) -> dict[str, np.ndarray]:
    """Relative lift on |control mean|, or the absolute fallback when that mean is near zero.
    ``lift_vs_threshold`` is the effect in units of its threshold: the ±10% rules fire at ±1.
    ``material_effect`` (PnL per trade) is the smallest effect the decision acts on: both the lift
    bar and the effect-size bar (runbook 001: +10% and Cohen's d > 0.2)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(mc.mean != 0, diff / np.abs(mc.mean), np.nan)
        near_zero = ~(np.abs(mc.mean) >= cfg.near_zero_control_mean * mc.sd)  # NaN sd counts as near zero
        absolute = (np.full_like(diff, cfg.absolute_threshold) if cfg.absolute_threshold is not None
                    else cfg.min_cohen_d * pooled_sd)
        vs = np.where(near_zero, diff / absolute, lift / cfg.lift_threshold)
        lift_bar = np.where(near_zero, absolute, cfg.lift_threshold * np.abs(mc.mean))
    return {"lift": lift, "lift_absolute_basis": near_zero.astype(float), "absolute_threshold": absolute,
            "lift_vs_threshold": vs, "lift_bar": lift_bar,
            "material_effect": np.fmax(lift_bar, cfg.min_cohen_d * pooled_sd)}


def _power(out, ac, av, n_total, fractions, cfg: EvaluationSettings) -> dict[str, np.ndarray]:
    """Power and trades needed for the decision's estimate (its variances: CUPED-adjusted when
    used), against the observed difference and against the material effect; the trade budget."""
    frac_c, frac_v = fractions
    unit_variance = ac.var / frac_c + av.var / frac_v
    mde = out["material_effect"]
    se, df = out["estimate_se"], out["estimate_df"]
    res = {"mde_effect": mde}
    for label, effect in (("observed", out["estimate_difference"]), ("mde", mde)):
        res[f"needed_total_fixed_{label}"] = power.total_trades_t(effect, ac.var, av.var, frac_c, frac_v, cfg.alpha,
                                                                  cfg.power)
        res[f"needed_total_sequential_{label}"] = power.total_trades_sequential(
            effect, unit_variance, cfg.alpha, cfg.power, cfg.sequential_tuning)
    res["power_fixed_at_mde"] = power.power_t(mde, se, df, cfg.alpha)
    res["power_sequential_at_mde"] = power.achieved_power_sequential(mde, se, n_total, cfg.alpha, cfg.sequential_tuning)
    tost = power.tost_welch(out["estimate_difference"], se, df, mde)
    res.update(tost_bound=tost["bound"], tost_p=tost["p"], tost_p_lower=tost["p_lower"], tost_p_upper=tost["p_upper"])
    planned = res["needed_total_sequential_mde" if cfg.sequential else "needed_total_fixed_mde"]
    for group, frac, moments in (("control", frac_c, ac), ("variant", frac_v, av)):
        with np.errstate(invalid="ignore", over="ignore"):
            share = np.ceil(np.where(np.isfinite(planned), planned * frac, np.inf))
        res[f"trade_budget_{group}"] = np.clip(share, cfg.no_difference_after_trades, cfg.max_trades_per_group)
    res["trade_budget_reached"] = ((ac.n >= res["trade_budget_control"]) & (av.n >= res["trade_budget_variant"])
                                   ).astype(float)
    return res


def _runbook(control, variant, valid_c, valid_v, mc, mv, cfg: EvaluationSettings) -> dict[str, np.ndarray]:
    sc, sv = np.sort(control, axis=1), np.sort(variant, axis=1)  # NaN padding sorts last
    n_c = mc.n if valid_c is not None else None
    n_v = mv.n if valid_v is not None else None
    norm_c, norm_v = battery.dagostino_pearson(mc), battery.dagostino_pearson(mv)
    lev = battery.levene_median(control, variant, battery.sorted_quantile(sc, 0.5, n_c),
                                battery.sorted_quantile(sv, 0.5, n_v), valid_c, valid_v)
    mwu = battery.mann_whitney(sc, sv, n_c, n_v)
    student_p = student_test(mc, mv, cfg.alpha)["p"]
    pick = battery.runbook_pick(norm_c["p"], norm_v["p"], lev["p"], cfg.alpha)
    picked_p = np.choose(pick, [student_p, welch_test(mc, mv, cfg.alpha)["p"], mwu["p"]])

    keep_c = battery.iqr_keep(sc, control, cfg.iqr_multiplier, n_c)
    keep_v = battery.iqr_keep(sv, variant, cfg.iqr_multiplier, n_v)
    tc, tv = group_moments(control, keep_c), group_moments(variant, keep_v)
    trimmed = welch_test(tc, tv, cfg.alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        trimmed_lift = np.where(tc.mean != 0, trimmed["diff"] / np.abs(tc.mean), np.nan)
    return {
        "normality_statistic_control": norm_c["statistic"], "normality_p_control": norm_c["p"],
        "normality_statistic_variant": norm_v["statistic"], "normality_p_variant": norm_v["p"],
        "levene_statistic": lev["statistic"], "levene_p": lev["p"],
        "mann_whitney_u": mwu["u"], "mann_whitney_p": mwu["p"], "mann_whitney_common_language": mwu["common_language"],
        "runbook_test": pick.astype(float), "runbook_p": picked_p,
        "outliers_control": mc.n - tc.n, "outliers_variant": mv.n - tv.n,
        "without_outliers_n_control": tc.n, "without_outliers_n_variant": tv.n,
        "without_outliers_mean_difference": trimmed["diff"], "without_outliers_lift": trimmed_lift,
        "without_outliers_welch_p": trimmed["p"], "without_outliers_cohen_d": cohen_d(tc, tv),
    }
