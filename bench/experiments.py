"""Benchmark: the A/B statistics battery for 1,000 experiments of 2 x 5,000 trades.

Ours: one vectorised call (experiments along axis 0). Baselines: a loop calling pingouin per
experiment and a loop calling scipy per experiment for the same statistics (Welch and Student t,
Welch CI, Mann-Whitney U, normality per group, Levene, Cohen's d, Hedges' g, IQR outliers and
Welch without them, SRM chi-square, Welch TOST, win-rate test, per-trade Sharpe and PSR,
always-valid p-values and interval, Holm within each kind of p-value, the t power against the
material effect). Every shared number is checked to 1e-9 before timing. Ours also computes the
trades needed (noncentral t and sequential), the trade budget, MinTRL and the Bayesian summary,
which the loops leave out.

    .venv/bin/python bench/experiments.py [--experiments 1000] [--trades 5000] [--rounds 3] [--baseline-rounds 1]
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import pingouin as pg
from scipy import stats

from _common import median_seconds, ratio_line

from tasks.experiments.statistics import EvaluationSettings, evaluate_batch
from tradeops.sandbox.dataset import PNL_SD, TAIL_MULT, TAIL_PROB

SETTINGS = EvaluationSettings()
SPLIT = (50, 50)
COMPARED = ("welch_t", "welch_p", "welch_ci_low", "welch_ci_high", "student_p", "mann_whitney_u", "mann_whitney_p",
            "normality_p_control", "normality_p_variant", "levene_p", "cohen_d", "hedges_g", "outliers_control",
            "outliers_variant", "without_outliers_welch_p", "srm_p_value", "tost_p", "win_rate_p", "sharpe_p",
            "psr_control", "psr_variant", "sequential_p", "sequential_ci_low", "sequential_ci_high",
            "sharpe_sequential_p", "win_rate_sequential_p", "sequential_adjusted_mean_pnl", "sequential_adjusted_sharpe",
            "sequential_adjusted_win_rate", "fixed_adjusted_mean_pnl", "fixed_adjusted_sharpe",
            "fixed_adjusted_win_rate", "power_fixed_at_mde")


def _sharpe(x):
    sr = x.mean() / x.std(ddof=1)
    var = (1 - stats.skew(x) * sr + (stats.kurtosis(x, fisher=False) - 1) / 4 * sr**2) / (len(x) - 1)
    return sr, var


def _always_valid_p(estimate, se, n):
    rho2 = (-2 * math.log(SETTINGS.alpha) + math.log(-2 * math.log(SETTINGS.alpha) + 1)) / SETTINGS.sequential_tuning
    grow = n * rho2 + 1
    return min(1.0, math.exp(-(rho2 * n * (estimate / se) ** 2 / (2 * grow) - 0.5 * math.log(grow))))


def _shared_formulas(c, v, welch_t, welch_p, welch_diff, holm):
    """What no library offers per experiment: Sharpe/PSR, always-valid tests, SRM, win rate, Holm
    within each kind of p-value."""
    n = len(c) + len(v)
    (src, varc), (srv, varv) = _sharpe(c), _sharpe(v)
    sharpe_se = math.sqrt(varc + varv)
    sharpe_p = 2 * stats.norm.sf(abs(srv - src) / sharpe_se)
    se = welch_diff / welch_t
    rho2 = (-2 * math.log(SETTINGS.alpha) + math.log(-2 * math.log(SETTINGS.alpha) + 1)) / SETTINGS.sequential_tuning
    grow = n * rho2 + 1
    half = se * math.sqrt(n) * math.sqrt(2 * grow * math.log(math.sqrt(grow) / SETTINGS.alpha) / (n**2 * rho2))
    seq_p = _always_valid_p(welch_diff, se, n)
    table = [[(v > 0).sum(), (v <= 0).sum()], [(c > 0).sum(), (c <= 0).sum()]]
    win_p = stats.chi2_contingency(table, correction=False).pvalue
    rc, rv = (c > 0).mean(), (v > 0).mean()
    win_seq_p = _always_valid_p(rv - rc, math.sqrt(rc * (1 - rc) / len(c) + rv * (1 - rv) / len(v)), n)
    sharpe_seq_p = _always_valid_p(srv - src, sharpe_se, n)
    srm_p = stats.chisquare([len(c), len(v)], [n * SPLIT[0] / 100, n * SPLIT[1] / 100]).pvalue
    always_valid = holm([seq_p, sharpe_seq_p, win_seq_p])
    fixed = holm([welch_p, sharpe_p, win_p])
    return {"sharpe_p": sharpe_p, "psr_control": stats.norm.cdf(src / math.sqrt(varc)),
            "psr_variant": stats.norm.cdf(srv / math.sqrt(varv)), "sequential_p": seq_p,
            "sequential_ci_low": welch_diff - half, "sequential_ci_high": welch_diff + half,
            "win_rate_p": win_p, "srm_p_value": srm_p, "sharpe_sequential_p": sharpe_seq_p,
            "win_rate_sequential_p": win_seq_p, "sequential_adjusted_mean_pnl": always_valid[0],
            "sequential_adjusted_sharpe": always_valid[1], "sequential_adjusted_win_rate": always_valid[2],
            "fixed_adjusted_mean_pnl": fixed[0], "fixed_adjusted_sharpe": fixed[1], "fixed_adjusted_win_rate": fixed[2]}


def _power_t(c, v):
    """Welch's two-sided power against the material effect: the noncentral t, by scipy."""
    a, b = c.var(ddof=1) / len(c), v.var(ddof=1) / len(v)
    df = (a + b) ** 2 / (a**2 / (len(c) - 1) + b**2 / (len(v) - 1))
    shift, crit = _tost_bound(c, v) / math.sqrt(a + b), stats.t.isf(SETTINGS.alpha / 2, df)
    far = stats.nct.cdf(-crit, df, shift)
    return stats.nct.sf(crit, df, shift) + (0.0 if math.isnan(far) else far)


def _inside_fences(x):
    q1, q3 = np.percentile(x, [25, 75])
    return x[(x >= q1 - 1.5 * (q3 - q1)) & (x <= q3 + 1.5 * (q3 - q1))]


def _tost_bound(c, v):
    """The material effect: the larger of 10% of |control mean| and Cohen's d 0.2 x pooled sd."""
    nc, nv = len(c), len(v)
    pooled = math.sqrt(((nc - 1) * c.var(ddof=1) + (nv - 1) * v.var(ddof=1)) / (nc + nv - 2))
    return max(SETTINGS.lift_threshold * abs(c.mean()), SETTINGS.min_cohen_d * pooled)


def scipy_experiment(c, v):
    welch = stats.ttest_ind(v, c, equal_var=False)
    ci = welch.confidence_interval(1 - SETTINGS.alpha)
    nc, nv = len(c), len(v)
    d = (v.mean() - c.mean()) / math.sqrt(((nc - 1) * c.var(ddof=1) + (nv - 1) * v.var(ddof=1)) / (nc + nv - 2))
    mwu = stats.mannwhitneyu(v, c, alternative="two-sided", method="asymptotic")
    kc, kv = _inside_fences(c), _inside_fences(v)
    bound = _tost_bound(c, v)
    tost = max(stats.ttest_ind(v + bound, c, equal_var=False, alternative="greater").pvalue,
               stats.ttest_ind(v - bound, c, equal_var=False, alternative="less").pvalue)
    out = {"welch_t": welch.statistic, "welch_p": welch.pvalue, "welch_ci_low": ci.low, "welch_ci_high": ci.high,
           "student_p": stats.ttest_ind(v, c).pvalue, "mann_whitney_u": mwu.statistic, "mann_whitney_p": mwu.pvalue,
           "normality_p_control": stats.normaltest(c).pvalue, "normality_p_variant": stats.normaltest(v).pvalue,
           "levene_p": stats.levene(c, v).pvalue, "cohen_d": d, "hedges_g": d * (1 - 3 / (4 * (nc + nv) - 9)),
           "outliers_control": nc - len(kc), "outliers_variant": nv - len(kv),
           "without_outliers_welch_p": stats.ttest_ind(kv, kc, equal_var=False).pvalue, "tost_p": tost,
           "power_fixed_at_mde": _power_t(c, v)}
    out.update(_shared_formulas(c, v, welch.statistic, welch.pvalue, v.mean() - c.mean(), _holm))
    return out


def _holm(p):
    """Holm by hand: statsmodels' multipletests calls gc.collect() on every call (60 ms here)."""
    order = np.argsort(p)
    adjusted = np.minimum(np.maximum.accumulate(np.asarray(p)[order] * (len(p) - np.arange(len(p)))), 1.0)
    return adjusted[np.argsort(order)]


def pingouin_experiment(c, v):
    welch = pg.ttest(v, c, correction=True)  # not 'auto': that is Student for equal sizes
    kc, kv = _inside_fences(c), _inside_fences(v)
    mwu = pg.mwu(v, c, method="asymptotic")
    t, diff = welch["T"].iloc[0], v.mean() - c.mean()
    se = diff / t
    half = stats.t.ppf(1 - SETTINGS.alpha / 2, welch["dof"].iloc[0]) * se  # pingouin rounds CI95 to 2 decimals
    out = {"welch_t": t, "welch_p": welch["p_val"].iloc[0], "welch_ci_low": diff - half, "welch_ci_high": diff + half,
           "student_p": pg.ttest(v, c, correction=False)["p_val"].iloc[0], "mann_whitney_u": mwu["U_val"].iloc[0],
           "mann_whitney_p": mwu["p_val"].iloc[0],
           "normality_p_control": pg.normality(c, method="normaltest")["pval"].iloc[0],
           "normality_p_variant": pg.normality(v, method="normaltest")["pval"].iloc[0],
           "levene_p": pg.homoscedasticity([c, v])["pval"].iloc[0],
           "cohen_d": pg.compute_effsize(v, c, eftype="cohen"), "hedges_g": pg.compute_effsize(v, c, eftype="hedges"),
           "outliers_control": len(c) - len(kc), "outliers_variant": len(v) - len(kv),
           "without_outliers_welch_p": pg.ttest(kv, kc, correction=True)["p_val"].iloc[0],
           "tost_p": pg.tost(v, c, bound=_tost_bound(c, v), correction=True)["pval"].iloc[0],
           "power_fixed_at_mde": _power_t(c, v)}
    out.update(_shared_formulas(c, v, t, welch["p_val"].iloc[0], diff, lambda p: pg.multicomp(p, method="holm")[1]))
    return out


def loop(fn, control, variant):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [fn(c, v) for c, v in zip(control, variant)]


def max_difference(ours, rows) -> tuple[float, str]:
    worst, where = 0.0, ""
    for name in COMPARED:
        theirs = np.array([row[name] for row in rows], dtype=float)
        diff = np.abs(ours.columns[name] - theirs) / np.maximum(1.0, np.abs(theirs))
        if diff.max() > worst:
            worst, where = float(diff.max()), name
    return worst, where


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--trades", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-rounds", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(6)
    shape = (args.experiments, args.trades)

    def pnl(mean):
        return rng.normal(0.0, 1.0, shape) * np.where(rng.random(shape) < TAIL_PROB, PNL_SD * TAIL_MULT, PNL_SD) + mean

    control, variant = pnl(3.0), pnl(3.0) + rng.normal(0, 0.5, (args.experiments, 1))
    control[:, : args.trades // 10] = np.round(control[:, : args.trades // 10])  # some ties for Mann-Whitney
    variant[:, : args.trades // 10] = np.round(variant[:, : args.trades // 10])

    results = {}

    def timed(name, fn, rounds):
        return median_seconds(lambda: results.__setitem__(name, fn()), rounds)

    ours_s = timed("tradeops", lambda: evaluate_batch(control, variant, SPLIT, SETTINGS), args.rounds)
    scipy_s = timed("scipy", lambda: loop(scipy_experiment, control, variant), args.baseline_rounds)
    pingouin_s = timed("pingouin", lambda: loop(pingouin_experiment, control, variant), args.baseline_rounds)
    for name in ("scipy", "pingouin"):
        worst, where = max_difference(results["tradeops"], results[name])
        print(f"numbers vs the {name} loop: {len(COMPARED)} statistics x {args.experiments} experiments, "
              f"max relative difference {worst:.1e} ({where or 'all equal'})")
        assert worst <= 1e-9, f"{where} differs from the {name} loop by {worst}"
    what = f"battery for {args.experiments} experiments x 2 x {args.trades} trades"
    print(ratio_line(what, ours_s, "scipy loop", scipy_s, args.rounds))
    print(ratio_line(what, ours_s, "pingouin loop", pingouin_s, args.rounds))
    per = 1000 / args.experiments
    print(f"per experiment: tradeops {ours_s * per:.2f} ms, scipy loop {scipy_s * per:.2f} ms, "
          f"pingouin loop {pingouin_s * per:.2f} ms (baselines: median of {args.baseline_rounds})")
    targets = {"10x the pingouin loop": pingouin_s / ours_s >= 10, "2x the scipy loop": scipy_s / ours_s >= 2,
               "batch under 3 s": ours_s < 3.0}
    print("targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in targets.items()))
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
