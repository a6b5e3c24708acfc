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
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import ttost_ind

from tasks.experiments.statistics import (EvaluationSettings, ExperimentInputError, evaluate_batch,
                                          evaluate_experiment)
from tasks.experiments.statistics.moments import GroupMoments
from tasks.experiments.statistics.multiple import holm
from tasks.experiments.statistics.power import achieved_power_fixed, total_trades_fixed, total_trades_sequential
from tasks.experiments.statistics.sequential import sequential_halfwidth, sequential_p_value, sequential_rho
from tasks.experiments.statistics.sharpe import probabilistic_sharpe_ratio, sharpe_variance
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
    family = [r["p_value"], r["sharpe"]["p_value"], r["win_rate"]["p_value"]]
    defined = [p for p in family if p is not None]
    if defined:
        adjusted = iter(multipletests(defined, method="holm")[1])
        for ours, raw in zip((r["holm"]["mean_pnl"], r["holm"]["sharpe"], r["holm"]["win_rate"]), family):
            assert ours is None if raw is None else close(ours, next(adjusted))


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


def test_batch_equals_single_experiment_api():
    rng = np.random.default_rng(11)
    control, variant = mixture(rng, 6 * 400, 3.0).reshape(6, 400), mixture(rng, 6 * 150, 3.5).reshape(6, 150)
    batch = evaluate_batch(control, variant, (70, 30))
    for i in range(6):
        single = evaluate_experiment(control[i], variant[i], (70, 30))
        assert batch.experiment(i).as_dict() == single.as_dict()


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
