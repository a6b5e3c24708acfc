"""The whole battery for many experiments at once: experiments along axis 0, trades along axis 1.

Every group of a batch has the same number of trades (one array per group); the
single-experiment API is this with one row, so both give the same numbers by construction.
Work runs in row chunks so the temporaries stay in cache and memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import battery, power, sharpe
from .inputs import ExperimentInputError, pnl_matrix, split_fractions
from .moments import group_moments
from .multiple import holm
from .proportions import win_rate_test
from .sequential import sequential_test
from .settings import EvaluationSettings
from .srm import srm_test
from .welch import cohen_d, hedges_g, pooled_variance, student_test, welch_test

CHUNK_ROWS = 64
DECISION_FAMILY = ("mean_pnl", "sharpe", "win_rate")  # the metrics Holm corrects across


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

    def experiment(self, i: int, **decide_kwargs):
        """Experiment ``i`` as an ExperimentStatistics, decision included."""
        from . import ExperimentStatistics

        return ExperimentStatistics.from_row(self.row(i), self.split, self.settings, **decide_kwargs)


def evaluate_batch(control_pnl, variant_pnl, split=(90, 10), settings: EvaluationSettings = EvaluationSettings(),
                   runbook_battery: bool = True) -> BatchStatistics:
    """Statistics for every experiment (row); ``runbook_battery=False`` skips the report-only
    rank/normality/outlier part (the decision never uses it), e.g. for simulations."""
    control, variant = pnl_matrix(control_pnl, "control_pnl"), pnl_matrix(variant_pnl, "variant_pnl")
    if control.shape[0] != variant.shape[0]:
        raise ExperimentInputError(f"control_pnl has {control.shape[0]} experiments but variant_pnl has {variant.shape[0]}")
    fractions = split_fractions(split)
    chunks = [_evaluate_rows(control[s:s + CHUNK_ROWS], variant[s:s + CHUNK_ROWS], fractions, settings, runbook_battery)
              for s in range(0, control.shape[0], CHUNK_ROWS)]
    columns = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    return BatchStatistics(columns, fractions, settings)


def _evaluate_rows(control, variant, fractions, cfg: EvaluationSettings, runbook_battery: bool) -> dict[str, np.ndarray]:
    frac_c, frac_v = fractions
    mc, mv = group_moments(control), group_moments(variant)
    welch = welch_test(mc, mv, cfg.alpha)
    seq = sequential_test(welch["diff"], welch["se"], mc.n + mv.n, cfg.alpha, cfg.sequential_tuning)
    d = cohen_d(mc, mv)
    out = {
        "n_control": mc.n, "n_variant": mv.n, "mean_control": mc.mean, "mean_variant": mv.mean,
        "sd_control": mc.sd, "sd_variant": mv.sd, "mean_difference": welch["diff"],
        "welch_t": welch["t"], "welch_df": welch["df"], "welch_se": welch["se"], "welch_p": welch["p"],
        "welch_ci_low": welch["ci_low"], "welch_ci_high": welch["ci_high"],
        "sequential_p": seq["p"], "sequential_ci_low": seq["ci_low"], "sequential_ci_high": seq["ci_high"],
        "cohen_d": d, "hedges_g": hedges_g(d, mc.n, mv.n),
    }
    decision_test = seq if cfg.sequential else welch
    out["p_value"], out["ci_low"], out["ci_high"] = decision_test["p"], decision_test["ci_low"], decision_test["ci_high"]
    out.update(_lift(out, mc, mv, cfg))

    student = student_test(mc, mv, cfg.alpha)
    out.update(student_t=student["t"], student_p=student["p"])

    srm = srm_test(mc.n, mv.n, frac_c, frac_v)
    out.update(srm_statistic=srm["statistic"], srm_p_value=srm["p"])

    out.update(_power(out, mc, mv, fractions, cfg))

    sr = sharpe.sharpe_difference_test(mc, mv)
    out.update({f"sharpe_{k}": v for k, v in sr.items()})
    for name, m, s in (("control", mc, sr["control"]), ("variant", mv, sr["variant"])):
        out[f"psr_{name}"] = sharpe.probabilistic_sharpe_ratio(s, cfg.psr_benchmark_sharpe, m.n, m.skewness, m.kurtosis)
        out[f"skewness_{name}"], out[f"kurtosis_{name}"] = m.skewness, m.kurtosis

    wr = win_rate_test(mc, mv)
    out.update({f"win_rate_{k}": v for k, v in wr.items()})

    adjusted = holm(np.column_stack([out["p_value"], sr["p"], wr["p"]]))
    out.update({f"holm_{metric}": adjusted[:, j] for j, metric in enumerate(DECISION_FAMILY)})

    if runbook_battery:
        out.update(_runbook(control, variant, mc, mv, cfg))
    return out


def _lift(out, mc, mv, cfg: EvaluationSettings) -> dict[str, np.ndarray]:
    """Relative lift on |control mean|, or the absolute fallback when that mean is near zero.
    ``lift_vs_threshold`` is the effect in units of its threshold: the ±10% rules fire at ±1."""
    diff = out["mean_difference"]
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(mc.mean != 0, diff / np.abs(mc.mean), np.nan)
        near_zero = ~(np.abs(mc.mean) >= cfg.near_zero_control_mean * mc.sd)  # NaN sd counts as near zero
        absolute = (np.full_like(diff, cfg.absolute_threshold) if cfg.absolute_threshold is not None
                    else cfg.min_cohen_d * np.sqrt(pooled_variance(mc, mv)))
        vs = np.where(near_zero, diff / absolute, lift / cfg.lift_threshold)
    return {"lift": lift, "lift_absolute_basis": near_zero.astype(float), "absolute_threshold": absolute,
            "lift_vs_threshold": vs}


def _power(out, mc, mv, fractions, cfg: EvaluationSettings) -> dict[str, np.ndarray]:
    frac_c, frac_v = fractions
    unit_variance = mc.var / frac_c + mv.var / frac_v
    mde = np.where(out["lift_absolute_basis"] > 0, out["absolute_threshold"],
                   cfg.minimum_detectable_effect * np.abs(mc.mean))
    n_total = mc.n + mv.n
    res = {"mde_effect": mde}
    for label, effect in (("observed", out["mean_difference"]), ("mde", mde)):
        res[f"needed_total_fixed_{label}"] = power.total_trades_fixed(effect, unit_variance, cfg.alpha, cfg.power)
        res[f"needed_total_sequential_{label}"] = power.total_trades_sequential(
            effect, unit_variance, cfg.alpha, cfg.power, cfg.sequential_tuning)
    res["power_fixed_at_mde"] = power.achieved_power_fixed(mde, out["welch_se"], cfg.alpha)
    res["power_sequential_at_mde"] = power.achieved_power_sequential(mde, out["welch_se"], n_total, cfg.alpha,
                                                                     cfg.sequential_tuning)
    tost = power.tost_welch(out["mean_difference"], out["welch_se"], out["welch_df"], mde)
    res.update(tost_bound=tost["bound"], tost_p=tost["p"], tost_p_lower=tost["p_lower"], tost_p_upper=tost["p_upper"])
    return res


def _runbook(control, variant, mc, mv, cfg: EvaluationSettings) -> dict[str, np.ndarray]:
    sc, sv = np.sort(control, axis=1), np.sort(variant, axis=1)
    norm_c, norm_v = battery.dagostino_pearson(mc), battery.dagostino_pearson(mv)
    lev = battery.levene_median(control, variant, battery.sorted_quantile(sc, 0.5), battery.sorted_quantile(sv, 0.5))
    mwu = battery.mann_whitney(sc, sv)
    student_p = student_test(mc, mv, cfg.alpha)["p"]
    pick = battery.runbook_pick(norm_c["p"], norm_v["p"], lev["p"], cfg.alpha)
    picked_p = np.choose(pick, [student_p, welch_test(mc, mv, cfg.alpha)["p"], mwu["p"]])

    keep_c = battery.iqr_keep(sc, control, cfg.iqr_multiplier)
    keep_v = battery.iqr_keep(sv, variant, cfg.iqr_multiplier)
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
