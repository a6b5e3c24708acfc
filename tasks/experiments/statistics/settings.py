"""Every threshold the evaluation uses, in one frozen object (defaults from runbooks 000/001)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from annotated_types import Interval

# GrowthBook's default for its sequential t-test (gbstats SequentialConfig): the total sample
# size at which the confidence sequence is tightest.
GROWTHBOOK_SEQUENTIAL_TUNING = 5000.0
MULTIPLE_TESTING = ("holm", "benjamini-hochberg")


# What an environment's override (`[experiments] settings`) may be: probabilities strictly between
# 0 and 1, effect sizes and multipliers positive and at most 10 (1000%, 10 sd), trade counts up
# to ten million. __post_init__ adds the rules between settings.
PROBABILITY = Interval(gt=0, lt=1)
POSITIVE_UP_TO_10 = Interval(gt=0, le=10)
TRADE_COUNT = Interval(ge=2, le=10_000_000)
SETTING_BOUNDS: dict[str, Interval] = {
    "alpha": PROBABILITY,
    "min_trades_per_group": TRADE_COUNT,
    "no_difference_after_trades": TRADE_COUNT,
    "lift_threshold": POSITIVE_UP_TO_10,
    "absolute_threshold": Interval(gt=0, le=1e12),
    "near_zero_control_mean": POSITIVE_UP_TO_10,
    "min_cohen_d": POSITIVE_UP_TO_10,
    "srm_threshold": PROBABILITY,
    "sequential_tuning": Interval(gt=0, le=1e9),
    "power": PROBABILITY,
    "minimum_detectable_effect": POSITIVE_UP_TO_10,
    "iqr_multiplier": Interval(gt=0, le=100),
    "psr_benchmark_sharpe": Interval(ge=-10, le=10),
}


@dataclass(frozen=True)
class EvaluationSettings:
    """Thresholds for one evaluation; all configurable, defaults are the runbooks'.

    ``near_zero_control_mean`` is in units of the control group's PnL standard deviation:
    below ``0.05`` sd a ±10% relative lift is a shift of under 0.005 sd, far below anything
    the test can see, so the ±10% rules switch to ``absolute_threshold`` (PnL per trade).
    When ``absolute_threshold`` is None that bar is the runbook's effect-size bar,
    ``min_cohen_d`` x the pooled standard deviation.

    The material effect is the smallest difference the decision acts on: a lift of at least
    ``lift_threshold`` and a Cohen's d beyond ``min_cohen_d`` (runbook 001's +10% and d > 0.2), in
    PnL per trade max(lift_threshold x |control mean|, min_cohen_d x pooled sd). Promotion and
    rollback need the same evidence by default: significant and a material point estimate.
    ``rollback_requires_significance = False`` and ``rollback_requires_effect_size = False`` are
    the two named ways to make rollback easier (runbook 001 literally: "Variant -10% -> immediate
    rollback"); each is reported in the decision when it is what fired.

    Every experiment ends: once the smaller group reaches its trade budget, or the planned end
    date passes, the decision is terminal. The trade budget per group is what the decision test
    needs to find the material effect with ``power`` (from the observed variances and the split),
    at least ``no_difference_after_trades`` and at most ``max_trades_per_group``.
    """

    alpha: float = 0.05
    min_trades_per_group: int = 100
    no_difference_after_trades: int = 500  # per group
    lift_threshold: float = 0.10  # ±10%
    absolute_threshold: float | None = None  # PnL units per trade, used when |control mean| is near zero
    near_zero_control_mean: float = 0.05  # in control standard deviations (see docstring)
    min_cohen_d: float = 0.2
    srm_threshold: float = 0.001  # GrowthBook's SRM p-value threshold
    sequential: bool = True  # decide on the always-valid test; False = fixed-horizon (labelled)
    sequential_tuning: float = GROWTHBOOK_SEQUENTIAL_TUNING
    power: float = 0.8
    minimum_detectable_effect: float = 0.10  # relative to |control mean|
    rollback_requires_significance: bool = True  # a -10% point estimate alone is noise at n=100
    rollback_requires_effect_size: bool = True  # the same d bar as promotion (A/A: as many false rollbacks as promotions)
    max_trades_per_group: int = 20000  # the trade budget's cap
    multiple_testing: str = "holm"  # the decision family's correction: holm (FWER) or benjamini-hochberg (FDR)
    cuped: bool = True  # use each trade's pre-period PnL (CUPED) when the trades carry it
    bayesian_prior_sd: float | None = None  # prior sd of the effect (PnL per trade); None: flat prior
    iqr_multiplier: float = 1.5  # Tukey fences for the outlier count
    psr_benchmark_sharpe: float = 0.0  # per trade

    def __post_init__(self) -> None:
        problems = []
        for name in ("alpha", "power", "srm_threshold"):
            if not 0 < getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)!r} must lie strictly between 0 and 1")
        for name in ("lift_threshold", "near_zero_control_mean", "min_cohen_d", "sequential_tuning",
                     "minimum_detectable_effect", "iqr_multiplier"):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)!r} must be positive")
        if self.absolute_threshold is not None and not self.absolute_threshold > 0:
            problems.append(f"absolute_threshold={self.absolute_threshold!r} must be positive or None")
        if self.multiple_testing not in MULTIPLE_TESTING:
            problems.append(f"multiple_testing={self.multiple_testing!r} must be one of {', '.join(MULTIPLE_TESTING)}")
        if self.bayesian_prior_sd is not None and not self.bayesian_prior_sd > 0:
            problems.append(f"bayesian_prior_sd={self.bayesian_prior_sd!r} must be positive or None")
        if self.max_trades_per_group < self.no_difference_after_trades:
            problems.append(f"max_trades_per_group={self.max_trades_per_group} must be at least "
                            f"no_difference_after_trades={self.no_difference_after_trades}")
        if self.min_trades_per_group < 2 or self.no_difference_after_trades < self.min_trades_per_group:
            problems.append("need 2 <= min_trades_per_group <= no_difference_after_trades, got "
                            f"{self.min_trades_per_group} and {self.no_difference_after_trades}")
        if problems:
            raise ValueError("invalid EvaluationSettings: " + "; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)
