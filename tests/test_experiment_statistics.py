"""Every statistic of the experiment battery against an independent computation.

Independent = scipy / pingouin / statsmodels called per data set, or a formula written here,
at 1e-9 on fixed data sets (fat tails, ties, unequal sizes, zero variance, tiny groups); and
published reference values (GrowthBook, mlfinlab, Bailey & López de Prado) at their printed
precision, each cited where it is used.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import ttost_ind

from tasks.experiments.statistics import (EvaluationSettings, ExperimentInputError, ExperimentStatistics, evaluate_batch,
                                          evaluate_experiment)
from tasks.experiments.statistics.moments import GroupMoments
from tasks.experiments.statistics.bayesian import bayesian_summary
from tasks.experiments.statistics.multiple import benjamini_hochberg, holm
from tasks.experiments.statistics.power import (achieved_power_fixed, power_t, total_trades_fixed, total_trades_sequential,
                                                total_trades_t, welch_df)
from tasks.experiments.statistics.sequential import sequential_halfwidth, sequential_p_value, sequential_rho
from tasks.experiments.statistics.sharpe import (deflated_sharpe_ratio, expected_max_sharpe, min_track_record_length,
                                                 probabilistic_sharpe_ratio, sharpe_variance)
from tasks.experiments.statistics.welch import welch_test

TOL = 1e-9


def close(ours, reference, tol=TOL):
    """Equal to ``tol`` relative-or-absolute; an undefined statistic (None) must match NaN."""
    if ours is None:
        return reference is None or not np.isfinite(reference)
    return math.isclose(ours, float(reference), rel_tol=tol, abs_tol=tol)


def mixture(rng, n, mean):
    sd = np.where(rng.random(n) < 0.1, 45.0, 15.0)
    return rng.normal(0.0, 1.0, n) * sd + mean


def _datasets():
    rng = np.random.default_rng(20260601)
    return {
        "fat_tails_unequal_sizes": (mixture(rng, 180, 3.0), mixture(rng, 130, 6.0)),
        "ties": (np.round(rng.normal(1, 3, 120)), np.round(rng.normal(2, 3, 95))),
        "tiny": (np.array([1.5, -2.0, 0.25]), np.array([3.0, 0.5, 2.5, -1.0])),
        "zero_variance_control": (np.full(40, 2.0), rng.normal(2.5, 1.0, 35)),
        "both_constant": (np.full(12, 1.0), np.full(9, 1.0)),
        "heavy_large": (mixture(rng, 2000, 4.0), mixture(rng, 300, 2.0)),
    }


DATASETS = _datasets()
SPLIT = (60, 40)


@pytest.fixture(scope="module")
def results():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: evaluate_experiment(c, v, SPLIT).as_dict() for name, (c, v) in DATASETS.items()}


def _silenced(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("name", DATASETS)
def test_t_tests_and_effect_sizes_equal_scipy_and_pingouin(results, name):
    c, v = DATASETS[name]
    r = results[name]
    welch = _silenced(stats.ttest_ind, v, c, equal_var=False)
    student = _silenced(stats.ttest_ind, v, c, equal_var=True)
    assert close(r["fixed_horizon"]["t"], welch.statistic) and close(r["fixed_horizon"]["p_value"], welch.pvalue)
    assert close(r["runbook"]["student_t"]["t"], student.statistic)
    assert close(r["runbook"]["student_t"]["p_value"], student.pvalue)
    if np.isfinite(welch.pvalue):
        ci = welch.confidence_interval(0.95)
        assert close(r["fixed_horizon"]["ci"][0], ci.low) and close(r["fixed_horizon"]["ci"][1], ci.high)
        assert close(r["fixed_horizon"]["df"], welch.df)
        # pingouin: correction=True forces Welch (its 'auto' would not for equal sizes); p column 'p_val'
        ping = _silenced(pg.ttest, v, c, correction=True)
        assert close(r["fixed_horizon"]["p_value"], ping["p_val"].iloc[0])
        assert close(r["fixed_horizon"]["df"], ping["dof"].iloc[0])
    assert close(r["mean_difference"], v.mean() - c.mean())
    pooled = math.sqrt(((len(c) - 1) * c.var(ddof=1) + (len(v) - 1) * v.var(ddof=1)) / (len(c) + len(v) - 2))
    d = (v.mean() - c.mean()) / pooled if pooled > 0 else None
    assert close(r["cohen_d"], d) if d is not None else r["cohen_d"] is None
    if d is not None:
        # pingouin's compute_effsize is signed (x - y); its ttest column 'cohen_d' is |d|
        assert close(r["cohen_d"], pg.compute_effsize(v, c, eftype="cohen"))
        assert close(r["hedges_g"], pg.compute_effsize(v, c, eftype="hedges"))
        assert close(abs(r["cohen_d"]), _silenced(pg.ttest, v, c, correction=True)["cohen_d"].iloc[0])
    lift = (v.mean() - c.mean()) / abs(c.mean())
    assert close(r["lift"], lift)


@pytest.mark.parametrize("name", DATASETS)
def test_rank_normality_and_variance_tests_equal_scipy(results, name):
    c, v = DATASETS[name]
    rb = results[name]["runbook"]
    mwu = _silenced(stats.mannwhitneyu, v, c, alternative="two-sided", method="asymptotic")
    assert close(rb["mann_whitney_u"]["u_variant"], mwu.statistic)
    assert close(rb["mann_whitney_u"]["p_value"], mwu.pvalue)
    assert close(rb["mann_whitney_u"]["common_language"], np.where(v[:, None] == c, 0.5, v[:, None] > c).mean())
    lev = _silenced(stats.levene, c, v, center="median")
    assert close(rb["levene"]["statistic"], lev.statistic) and close(rb["levene"]["p_value"], lev.pvalue)
    for group, x in (("control", c), ("variant", v)):
        ours = rb["normality"][group]
        if len(x) >= 8:
            ref = _silenced(stats.normaltest, x)
            assert close(ours["statistic"], ref.statistic) and close(ours["p_value"], ref.pvalue)
        else:  # scipy refuses n < 8: undefined, and the runbook rule falls back to Mann-Whitney
            assert ours["p_value"] is None and rb["picked_test"] == "mann_whitney_u"


def test_pingouin_battery_agrees_on_a_large_group(results):
    c, v = DATASETS["heavy_large"]
    rb = results["heavy_large"]["runbook"]
    assert close(rb["mann_whitney_u"]["p_value"], pg.mwu(v, c)["p_val"].iloc[0])  # asymptotic for n > 8
    assert close(rb["normality"]["control"]["p_value"], pg.normality(c, method="normaltest")["pval"].iloc[0])
    assert close(rb["levene"]["p_value"], pg.homoscedasticity([c, v])["pval"].iloc[0])
    # fat-tailed PnL fails normality at this n, so the runbook rule picks Mann-Whitney
    assert rb["picked_test"] == "mann_whitney_u" and close(rb["picked_p_value"], rb["mann_whitney_u"]["p_value"])


def test_runbook_rule_picks_student_or_welch_for_normal_groups():
    rng = np.random.default_rng(3)
    equal = evaluate_experiment(rng.normal(0, 1, 300), rng.normal(0.1, 1, 300), (50, 50)).as_dict()["runbook"]
    unequal = evaluate_experiment(rng.normal(0, 1, 300), rng.normal(0.1, 3, 300), (50, 50)).as_dict()["runbook"]
    assert equal["picked_test"] == "student_t" and close(equal["picked_p_value"], equal["student_t"]["p_value"])
    assert unequal["picked_test"] == "welch_t" and close(unequal["picked_p_value"], unequal["welch_t"]["p_value"])


@pytest.mark.parametrize("name", DATASETS)
def test_outliers_counted_and_result_without_them(results, name):
    c, v = DATASETS[name]
    ol = results[name]["outliers"]

    def inside(x):
        q1, q3 = np.percentile(x, [25, 75])
        return x[(x >= q1 - 1.5 * (q3 - q1)) & (x <= q3 + 1.5 * (q3 - q1))]

    kc, kv = inside(c), inside(v)
    assert ol["control"] == len(c) - len(kc) and ol["variant"] == len(v) - len(kv)
    trimmed = _silenced(stats.ttest_ind, kv, kc, equal_var=False)
    assert close(ol["without"]["mean_difference"], kv.mean() - kc.mean())
    assert close(ol["without"]["welch_p"], trimmed.pvalue)
    assert close(ol["with"]["welch_p"], results[name]["fixed_horizon"]["p_value"])


@pytest.mark.parametrize("name", DATASETS)
def test_sharpe_psr_and_win_rate(results, name):
    c, v = DATASETS[name]
    r = results[name]
    sr = {}
    for group, x in (("control", c), ("variant", v)):
        if x.std() == 0:
            assert r["sharpe"][group] is None and r["psr"][group] is None
            continue
        s = x.mean() / x.std(ddof=1)
        g3, g4 = stats.skew(x), stats.kurtosis(x, fisher=False)  # ordinary kurtosis
        var = (1 - g3 * s + (g4 - 1) / 4 * s**2) / (len(x) - 1)
        sr[group] = (s, var)
        assert close(r["sharpe"][group], s)
        assert close(r["psr"][group], stats.norm.cdf(s / math.sqrt(var)))
    if len(sr) == 2:
        z = (sr["variant"][0] - sr["control"][0]) / math.sqrt(sr["variant"][1] + sr["control"][1])
        assert close(r["sharpe"]["z"], z) and close(r["sharpe"]["p_value"], 2 * stats.norm.sf(abs(z)))
        lo = math.sqrt((1 + sr["variant"][0] ** 2 / 2) / len(v) + (1 + sr["control"][0] ** 2 / 2) / len(c))
        assert close(r["sharpe"]["se_lo_iid_normal"], lo)
    wins = [int((v > 0).sum()), int((c > 0).sum())]
    assert close(r["win_rate"]["control"], wins[1] / len(c)) and close(r["win_rate"]["variant"], wins[0] / len(v))
    if 0 < sum(wins) < len(c) + len(v):
        z, p = proportions_ztest(wins, [len(v), len(c)])
        assert close(r["win_rate"]["z"], z) and close(r["win_rate"]["p_value"], p)
    else:
        assert r["win_rate"]["p_value"] is None


@pytest.mark.parametrize("name", DATASETS)
def test_srm_tost_holm_and_sequential(results, name):
    c, v = DATASETS[name]
    r = results[name]
    n = len(c) + len(v)
    chi = stats.chisquare([len(c), len(v)], [n * 0.6, n * 0.4])
    assert close(r["srm_statistic"], chi.statistic) and close(r["srm_p_value"], chi.pvalue)
    bound = r["equivalence_tost"]["bound"]
    if r["fixed_horizon"]["p_value"] is not None:
        p, lower, upper = ttost_ind(v, c, -bound, bound, usevar="unequal")
        assert close(r["equivalence_tost"]["p_value"], p)
        assert close(r["equivalence_tost"]["p_lower"], lower[1]) and close(r["equivalence_tost"]["p_upper"], upper[1])
        # the always-valid test, written from Waudby-Smith et al. (arXiv 2103.06476v7) eqs. 9, 155, 161
        se, diff, alpha, tuning = r["fixed_horizon"]["se"], r["mean_difference"], 0.05, 5000.0
        rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
        half = math.sqrt(se**2 * n) * math.sqrt(2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / alpha) / (n**2 * rho2))
        assert close(r["sequential"]["ci"][0], diff - half) and close(r["sequential"]["ci"][1], diff + half)
        evalue = math.exp(rho2 * n * (diff / se) ** 2 / (2 * (n * rho2 + 1))) / math.sqrt(n * rho2 + 1)
        assert close(r["sequential"]["p_value"], min(1.0, 1.0 / evalue))
        assert r["test"].startswith("sequential") and r["p_value"] == r["sequential"]["p_value"]
    # one correction per kind of p-value: always-valid with always-valid, fixed-horizon with fixed-horizon
    mt = r["multiple_testing"]
    assert mt["decision_family"] == "always_valid" and mt["method"] == "holm"
    assert mt["always_valid"]["mean_pnl"]["p_value"] == r["p_value"]
    assert mt["fixed_horizon"]["mean_pnl"]["p_value"] == r["fixed_horizon"]["p_value"]  # no CUPED here: raw Welch
    if r["sharpe"]["se"] is not None:
        sr_diff, sr_se = r["sharpe"]["difference"], r["sharpe"]["se"]
        evalue = math.exp(rho2 * n * (sr_diff / sr_se) ** 2 / (2 * (n * rho2 + 1))) / math.sqrt(n * rho2 + 1)
        assert close(r["sharpe"]["sequential_p_value"], min(1.0, 1.0 / evalue))
    for family in ("always_valid", "fixed_horizon"):
        raw = [mt[family][m]["p_value"] for m in ("mean_pnl", "sharpe", "win_rate")]
        defined = [p for p in raw if p is not None]
        if defined:
            adjusted = iter(multipletests(defined, method="holm")[1])
            for m, p in zip(("mean_pnl", "sharpe", "win_rate"), raw):
                ours = mt[family][m]["adjusted"]
                assert ours is None if p is None else close(ours, next(adjusted))
    assert r["p_value_adjusted"] == mt["always_valid"]["mean_pnl"]["adjusted"]


def test_undefined_statistics_are_none_not_nan(results):
    both = results["both_constant"]
    assert both["p_value"] is None and both["cohen_d"] is None and both["fixed_horizon"]["t"] is None
    zero = results["zero_variance_control"]
    assert zero["runbook"]["normality"]["control"]["p_value"] is None and zero["p_value"] is not None
    for r in results.values():
        json.dumps(r, allow_nan=False)  # plain JSON: no NaN, no inf, no numpy scalars
        for key in ("decision", "rule", "p_value", "test", "lift", "ci", "cohen_d", "n_control", "n_variant", "srm_p_value"):
            assert key in r


def test_holm_matches_statsmodels_row_by_row():
    rng = np.random.default_rng(5)
    p = rng.random((8, 4)) ** 3  # statsmodels gc.collect()s per call: keep it short
    p[::3, 2] = np.nan
    ours = holm(p)
    for row, adjusted in zip(p, ours):
        keep = ~np.isnan(row)
        assert np.allclose(adjusted[keep], multipletests(row[keep], method="holm")[1], rtol=0, atol=TOL)
        assert np.isnan(adjusted[~keep]).all()


def test_benjamini_hochberg_matches_statsmodels_row_by_row():
    rng = np.random.default_rng(6)
    p = rng.random((8, 5)) ** 3
    p[::3, 1] = np.nan
    ours = benjamini_hochberg(p)
    for row, adjusted in zip(p, ours):
        keep = ~np.isnan(row)
        assert np.allclose(adjusted[keep], multipletests(row[keep], method="fdr_bh")[1], rtol=0, atol=TOL)
        assert np.isnan(adjusted[~keep]).all()
    rng = np.random.default_rng(9)
    bh = evaluate_experiment(mixture(rng, 400, 3.0), mixture(rng, 400, 6.0), (50, 50),
                             EvaluationSettings(multiple_testing="benjamini-hochberg")).as_dict()
    family = [bh["multiple_testing"]["always_valid"][m]["p_value"] for m in ("mean_pnl", "sharpe", "win_rate")]
    assert close(bh["p_value_adjusted"], multipletests(family, method="fdr_bh")[1][0])
    assert "Benjamini-Hochberg" in bh["multiple_testing"]["note"]


def test_t_power_and_sample_size_equal_statsmodels_ttestindpower():
    # equal variances, 50/50: Welch's df is n1 + n2 - 2, exactly TTestIndPower's
    for d in (0.2, 0.3, 0.5, 1.0):
        total = float(total_trades_t(d, 1.0, 1.0, 0.5, 0.5, 0.05, 0.8))
        assert close(total / 2, TTestIndPower().solve_power(d, alpha=0.05, power=0.8, ratio=1.0), 1e-6)
    # the example: d = 0.2 needs 393.4 per group (the normal approximation said 392.4)
    assert round(float(total_trades_t(0.2, 1.0, 1.0, 0.5, 0.5, 0.05, 0.8)) / 2, 1) == 393.4
    assert round(float(total_trades_fixed(0.2, 4.0, 0.05, 0.8)) / 2, 1) == 392.4
    for n in (20, 150, 600):
        se = math.sqrt(2 / n)
        ours = float(power_t(0.3, se, welch_df(1.0, 1.0, n, n), 0.05))
        assert close(ours, TTestIndPower().power(0.3, nobs1=n, alpha=0.05, ratio=1.0), 1e-9)
    # where scipy's noncentral t gives NaN for the far tail (statsmodels answers NaN), ours is 1
    assert float(power_t(0.3, math.sqrt(2 / 2500), welch_df(1.0, 1.0, 2500, 2500), 0.05)) == pytest.approx(1.0)
    # unequal variances and split: the noncentral t at Welch's df, written out here
    var_c, var_v, n_c, n_v, effect = 400.0, 900.0, 900, 100, 4.0
    se = math.sqrt(var_c / n_c + var_v / n_v)
    df = (var_c / n_c + var_v / n_v) ** 2 / ((var_c / n_c) ** 2 / (n_c - 1) + (var_v / n_v) ** 2 / (n_v - 1))
    crit = stats.t.ppf(0.975, df)
    ref = stats.nct.sf(crit, df, effect / se) + stats.nct.cdf(-crit, df, effect / se)
    assert close(float(power_t(effect, se, welch_df(var_c, var_v, n_c, n_v), 0.05)), ref)
    total = float(total_trades_t(effect, var_c, var_v, 0.9, 0.1, 0.05, 0.8))
    se_n = math.sqrt(var_c / (0.9 * total) + var_v / (0.1 * total))
    assert close(float(power_t(effect, se_n, welch_df(var_c, var_v, 0.9 * total, 0.1 * total), 0.05)), 0.8, 1e-9)


def test_power_formulas_equal_statsmodels():
    sd, effect, alpha = 20.0, 1.5, 0.05
    for frac_c in (0.5, 0.9):
        frac_v = 1 - frac_c
        total = float(total_trades_fixed(effect, sd**2 / frac_c + sd**2 / frac_v, alpha, 0.8))
        nobs1 = NormalIndPower().solve_power(effect / sd, alpha=alpha, power=0.8, ratio=frac_v / frac_c)
        # statsmodels solves numerically and counts the far rejection tail too (~2e-6 relative)
        assert close(total * frac_c, nobs1, 1e-5)
    se = sd * math.sqrt(1 / 900 + 1 / 100)
    ref = NormalIndPower().power(effect / sd, nobs1=900, alpha=alpha, ratio=100 / 900)
    assert close(float(achieved_power_fixed(effect, se, alpha)), ref)
    # the sequential needed n is where half-width + z_0.8 se just reaches the effect
    unit = sd**2 / 0.5 * 2
    n = float(total_trades_sequential(effect, unit, alpha, 0.8, 5000.0))
    se_n = math.sqrt(unit / n)
    assert close(float(sequential_halfwidth(se_n, n, alpha, 5000.0)) + stats.norm.ppf(0.8) * se_n, effect, 1e-9)
    assert n > total_trades_fixed(effect, unit, alpha, 0.8)


def _growthbook_moments(total, sum_squares, n):
    """gbstats SampleMeanStatistic: mean = sum / n, variance = (sum_squares - sum²/n) / (n - 1)."""
    arr = lambda x: np.array([float(x)])  # noqa: E731
    return GroupMoments(arr(n), arr(total / n), arr((sum_squares - total**2 / n) / (n - 1)), arr(0), arr(3), arr(0))


def test_growthbook_reference_values():
    # growthbook/growthbook packages/stats/tests/frequentist/test_tests.py, test_two_sided_ttest_absolute:
    # SampleMeanStatistic(sum=1396.87, sum_squares=52377.9767, n=3407) vs (2422.7, 134698.29, 3461)
    # -> expected 0.29, ci (0.04538, 0.53462), stddev 0.12478, pValue 0.02016 (5 decimals).
    a = _growthbook_moments(1396.87, 52377.9767, 3407)
    b = _growthbook_moments(2422.7, 134698.29, 3461)
    w = {k: float(v[0]) for k, v in welch_test(a, b, 0.05).items()}
    assert round(w["diff"], 5) == 0.29 and round(w["se"], 5) == 0.12478 and round(w["p"], 5) == 0.02016
    assert (round(w["ci_low"], 5), round(w["ci_high"], 5)) == (0.04538, 0.53462)

    # same file, TestSequentialTTest.test_sequential_test_runs (relative effect, tuning 1000):
    # n=3000 vs 3461 -> expected 0.50336, ci (-0.55844, 1.56516), uplift stddev 0.33341, pValue 1.
    a = _growthbook_moments(1396.87, 52377.9767, 3000)
    ma, mb, va, vb = a.mean[0], b.mean[0], a.var[0], b.var[0]
    rel = (mb - ma) / ma
    rel_var = vb / (ma**2 * 3461) + va * mb**2 / (ma**4 * 3000)  # gbstats delta method
    half = float(sequential_halfwidth(math.sqrt(rel_var), 6461, 0.05, 1000.0))
    assert round(rel, 5) == 0.50336 and round(math.sqrt(rel_var), 5) == 0.33341
    assert (round(rel - half, 5), round(rel + half, 5)) == (-0.55844, 1.56516)
    assert float(sequential_p_value(rel, math.sqrt(rel_var), 6461, 0.05, 1000.0)) == 1.0

    # test_sequential_test_runs_prop (default tuning 5000): ProportionStatistic(1396, 3000) vs
    # (2422, 3461) -> expected 0.50386, ci (0.40098, 0.60675), stddev 0.03386, pValue 0.0.
    pa, pb = 1396 / 3000, 2422 / 3461
    rel = (pb - pa) / pa
    rel_var = pb * (1 - pb) / (pa**2 * 3461) + pa * (1 - pa) * pb**2 / (pa**4 * 3000)
    half = float(sequential_halfwidth(math.sqrt(rel_var), 6461, 0.05, 5000.0))
    assert round(rel, 5) == 0.50386 and (round(rel - half, 5), round(rel + half, 5)) == (0.40098, 0.60675)
    assert round(float(sequential_p_value(rel, math.sqrt(rel_var), 6461, 0.05, 5000.0)), 5) == 0.0
    assert EvaluationSettings().sequential_tuning == 5000.0  # gbstats SequentialConfig default
    assert sequential_rho(0.05, 5000.0) == pytest.approx(math.sqrt((-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / 5000))


def test_sharpe_reference_values():
    # hudson-and-thames/mlfinlab mlfinlab/tests/test_backtest_statistics.py, test_probabalistic_sharpe_ratio:
    # observed 1.14, benchmark 1, 250 returns, skew 0, kurtosis 3 -> 0.95727 (delta 1e-4).
    assert abs(float(probabilistic_sharpe_ratio(1.14, 1.0, 250, 0.0, 3.0)) - 0.95727) < 1e-5
    # rubenbriones/Probabilistic-Sharpe-Ratio tests/test_sharpe_ratio_stats.py, the examples of
    # Bailey & López de Prado (2012), "The Sharpe ratio efficient frontier" (ordinary kurtosis):
    assert round(math.sqrt(sharpe_variance(0.7079, 134, -0.2250, 2.9570)), 4) == 0.1028
    assert round(math.sqrt(sharpe_variance(0.8183, 134, -1.4455, 7.0497)), 4) == 0.1550
    assert round(float(probabilistic_sharpe_ratio(0.458, 0.0, 24, 0.0, 3.0)), 3) == 0.982
    assert round(float(probabilistic_sharpe_ratio(0.458, 0.0, 24, -2.448, 10.164)), 3) == 0.913
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example: annualised SR 2.5
    # over 1250 daily returns, skew -3, kurtosis 10, 100 trials with annualised SR variance 0.5
    # -> threshold SR0 = 0.1132 per day and DSR = 0.9004.
    gamma = 0.5772156649015329
    sr0 = math.sqrt(0.5 / 250) * ((1 - gamma) * stats.norm.ppf(1 - 1 / 100) + gamma * stats.norm.ppf(1 - 1 / (100 * math.e)))
    assert round(sr0, 4) == 0.1132
    assert round(float(probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)), 4) == 0.9004
    # excess kurtosis (quantstats' mistake) gives a different, wrong answer
    assert round(float(probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, -3.0, 7.0)), 4) != 0.9004
    # the same example through ours: the expected best of 100 trials, and the DSR
    assert round(float(expected_max_sharpe(100, 0.5 / 250)), 4) == 0.1132
    assert round(float(deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250)), 4) == 0.9004
    assert float(deflated_sharpe_ratio(0.2, 500, 0.0, 3.0, 1, 0.0)) == float(probabilistic_sharpe_ratio(0.2, 0.0, 500, 0.0, 3.0))
    # minimum track record length, Bailey & López de Prado (2012) examples as rubenbriones/Probabilistic-Sharpe-Ratio
    # tests/test_sharpe_ratio_stats.py checks them (monthly Sharpe, 95%, MinTRL in years = months / 12)
    assert round(float(min_track_record_length(0.7079, 0.0, -0.2250, 2.9570, 0.95)) / 12, 4) == 0.7152
    assert round(float(min_track_record_length(0.8183, 0.0, -1.4455, 7.0497, 0.95)) / 12, 4) == 1.1593
    assert math.isinf(float(min_track_record_length(0.1, 0.2, 0.0, 3.0, 0.95)))


def test_cuped_equals_an_independent_computation_and_reduces_variance():
    rng = np.random.default_rng(21)
    n_c, n_v = 700, 300
    pre_c, pre_v = rng.normal(3, 20, n_c), rng.normal(3, 20, n_v)
    c = 3.0 + 0.7 * (pre_c - 3) + rng.normal(0, 14, n_c)
    v = 5.0 + 0.7 * (pre_v - 3) + rng.normal(0, 14, n_v)
    r = evaluate_experiment(c, v, (70, 30), control_pre=pre_c, variant_pre=pre_v).as_dict()
    y, x = np.concatenate([c, v]), np.concatenate([pre_c, pre_v])
    theta = np.cov(x, y, ddof=1)[0, 1] / x.var(ddof=1)  # gbstats compute_theta: pooled over both groups
    ac, av = c - theta * (pre_c - x.mean()), v - theta * (pre_v - x.mean())
    welch = stats.ttest_ind(av, ac, equal_var=False)
    cu = r["cuped"]
    assert close(cu["theta"], theta) and close(cu["difference"], av.mean() - ac.mean())
    assert close(cu["se"], math.sqrt(ac.var(ddof=1) / n_c + av.var(ddof=1) / n_v))
    assert close(cu["p_value_fixed_horizon"], welch.pvalue)
    assert close(cu["variance_reduction"], 1 - cu["se"] ** 2 / r["fixed_horizon"]["se"] ** 2)
    assert cu["variance_reduction"] > 0.3 and r["estimate"]["basis"] == "CUPED-adjusted PnL"
    assert "CUPED" in r["test"] and r["estimate"]["difference"] == cu["difference"]
    off = evaluate_experiment(c, v, (70, 30), EvaluationSettings(cuped=False), control_pre=pre_c, variant_pre=pre_v)
    assert off.as_dict()["cuped"] is None and off.as_dict()["estimate"]["difference"] == r["mean_difference"]
    with pytest.raises(ValueError, match="both groups"):
        evaluate_experiment(c, v, (70, 30), control_pre=pre_c)
    with pytest.raises(ValueError, match="one value per trade"):
        evaluate_experiment(c, v, (70, 30), control_pre=pre_c[:-1], variant_pre=pre_v)


def test_bayesian_summary_equals_numerical_integration():
    from scipy import integrate

    diff, se = 0.8, 0.5
    out = {k: float(v) for k, v in bayesian_summary(diff, se, None, 0.05).items()}
    assert close(out["chance_to_beat_control"], stats.norm.sf(0, diff, se))
    loss_v = integrate.quad(lambda x: max(0.0, -x) * stats.norm.pdf(x, diff, se), -10, 10, points=[0])[0]
    loss_c = integrate.quad(lambda x: max(0.0, x) * stats.norm.pdf(x, diff, se), -10, 10, points=[0])[0]
    assert close(out["expected_loss_variant"], loss_v, 1e-8) and close(out["expected_loss_control"], loss_c, 1e-8)
    # a normal prior N(0, tau^2) shrinks toward 0: conjugate posterior
    tau = 1.0
    post_var = 1 / (1 / se**2 + 1 / tau**2)
    prior = {k: float(v) for k, v in bayesian_summary(diff, se, tau, 0.05).items()}
    assert close(prior["posterior_mean"], post_var * diff / se**2) and close(prior["posterior_sd"], math.sqrt(post_var))
    r = evaluate_experiment(mixture(np.random.default_rng(4), 300, 3.0), mixture(np.random.default_rng(5), 300, 5.0),
                            (50, 50)).as_dict()["bayesian"]
    assert 0 < r["chance_to_beat_control"] < 1 and r["prior"] == "flat"


def test_batch_equals_single_experiment_api():
    rng = np.random.default_rng(11)
    control, variant = mixture(rng, 6 * 400, 3.0).reshape(6, 400), mixture(rng, 6 * 150, 3.5).reshape(6, 150)
    batch = evaluate_batch(control, variant, (70, 30))
    for i in range(6):
        single = evaluate_experiment(control[i], variant[i], (70, 30))
        assert ExperimentStatistics.from_batch(batch, i).as_dict() == single.as_dict()


def test_batch_takes_unequal_trade_counts_per_row():
    rng = np.random.default_rng(12)
    sizes = [(400, 150), (37, 12), (2000, 260), (9, 11), (400, 150)]
    control = [np.round(mixture(rng, nc, 3.0), 1) for nc, _ in sizes]  # rounded: ties for Mann-Whitney
    variant = [np.round(mixture(rng, nv, 3.6), 1) for _, nv in sizes]
    pre_c = [rng.normal(0, 10, len(x)) for x in control]
    pre_v = [rng.normal(0, 10, len(x)) for x in variant]
    batch = evaluate_batch(control, variant, (70, 30))
    with_pre = evaluate_batch(control, variant, (70, 30), control_pre=pre_c, variant_pre=pre_v)
    for i in range(len(sizes)):
        single = evaluate_experiment(control[i], variant[i], (70, 30)).as_dict()
        ours = ExperimentStatistics.from_batch(batch, i).as_dict()
        assert ours.keys() == single.keys()
        flat_ours, flat_single = _flatten(ours), _flatten(single)
        for key, value in flat_single.items():
            other = flat_ours[key]
            if isinstance(value, float) and isinstance(other, float):
                assert close(other, value, 1e-9), key  # padded rows sum in another order
            else:
                assert other == value, key
        cuped = evaluate_experiment(control[i], variant[i], (70, 30), control_pre=pre_c[i], variant_pre=pre_v[i])
        assert close(with_pre.row(i)["cuped_difference"], cuped.row["cuped_difference"], 1e-9)
    with pytest.raises(ValueError, match="control_pnl\\[1\\] contains 1 non-finite"):
        evaluate_batch([np.ones(5), np.array([1.0, np.nan])], [np.ones(5), np.ones(3)])


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out
    return {prefix: value}


def test_relative_lift_falls_back_to_absolute_near_zero_control_mean():
    rng = np.random.default_rng(8)
    control = rng.normal(0, 20, 600)
    control += 0.01 - control.mean()  # control mean 0.01 PnL per trade
    variant = rng.normal(0, 20, 600)
    variant += 1.0 - variant.mean()
    r = evaluate_experiment(control, variant, (50, 50)).as_dict()
    assert r["lift_basis"] == "absolute" and "absolute threshold" in r["lift_note"]
    assert r["lift"] == pytest.approx(99.0)  # the exploded ratio is still reported
    configured = evaluate_experiment(control, variant, (50, 50), EvaluationSettings(absolute_threshold=2.0)).as_dict()
    assert configured["lift_vs_threshold"] == pytest.approx(0.99 / 2.0) and "(configured)" in configured["lift_note"]


def test_timestamps_give_time_ordered_autocorrelation():
    pnl = np.array([1.0, -1.0, 2.0, -2.0, 3.0, -3.0] * 20)
    ts = np.arange(pnl.size)[::-1]  # reversed clock: the series in time order is pnl[::-1]
    r = evaluate_experiment(pnl, pnl + 1, (50, 50), control_ts=ts, variant_ts=ts).as_dict()
    ordered = pnl[::-1]
    assert close(r["extras"]["lag1_autocorrelation_control"], np.corrcoef(ordered[:-1], ordered[1:])[0, 1])


@pytest.mark.parametrize("control, variant, split, message", [
    ([], [1.0, 2.0], (90, 10), "control_pnl is empty"),
    ([1.0, float("nan")], [1.0], (90, 10), "variant_pnl|control_pnl contains 1 non-finite"),
    ([1.0, 2.0], [1.0, float("inf")], (90, 10), "variant_pnl contains 1 non-finite"),
    (["a", "b"], [1.0], (90, 10), "control_pnl must be numeric"),
    ([1.0, None], [1.0], (90, 10), "control_pnl contains non-numeric"),
    ([1.0, 2.0], [1.0, 2.0], (80, 30), r"split \(80, 30\) must sum to 100, it sums to 110"),
    ([1.0, 2.0], [1.0, 2.0], (100, 0), "both parts must be positive"),
    ([1.0, 2.0], [1.0, 2.0], "ninety/ten", "not of the form"),
    ([[1.0, 2.0]], [1.0, 2.0], (50, 50), "must be one-dimensional"),
])
def test_bad_input_is_a_clear_value_error(control, variant, split, message):
    with pytest.raises(ValueError, match=message):
        evaluate_experiment(control, variant, split)
    assert issubclass(ExperimentInputError, ValueError)


def test_bad_settings_and_batch_shapes_are_value_errors():
    with pytest.raises(ValueError, match="alpha"):
        EvaluationSettings(alpha=1.5)
    with pytest.raises(ValueError, match="3 experiments but variant_pnl has 2"):
        evaluate_batch(np.zeros((3, 5)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="timestamps|control_ts has 1 entries"):
        evaluate_experiment([1.0, 2.0], [1.0, 2.0], (50, 50), control_ts=[1])
