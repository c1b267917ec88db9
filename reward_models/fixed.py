"""The paper's fixed (MONAS-style) metrics, Eqs. 3-8, and builders for user-defined ones.

The metrics themselves live in :mod:`natsbench_gym.rewards` (environments need them without this
package); this module re-exports them and adds what a user building a metric wants:

* one builder per metric of the paper, named as there: :func:`h_accuracy` (Eq. 3), :func:`h_latency`
  (Eq. 4), :func:`h_params` (Eq. 5), :func:`h_weighted` (Eq. 6, equal weights over accuracy, latency,
  params and FLOPs), :func:`h_flop_constraint` (Eq. 7) and :func:`h_accuracy_constraint` (Eq. 8);
* :func:`weighted_sum` and :func:`constraint` over any metric, with metric names as strings;
* :data:`PAPER_METRICS`, the six synthetic users of the paper's Table I in the table's row order;
* :func:`loss_many`, the loss form (lower is better) of any reward model.

Every metric is normalised to [0, 1] over the whole search space and turned into a utility (1 is
best); a metric's reward is that utility and its loss is ``1 - reward``
(:meth:`~natsbench_gym.rewards.BuiltinMetric.loss_many`).

**Direction of Eqs. 7-8.** The paper's prose says the constraint metrics return zero when FLOPs or
accuracy *exceed* a threshold, and its formulas return the objective when the cost is *above* the
threshold -- which would reward the largest networks under a FLOPs "constraint". We take the only
meaningful reading: Eq. 7 rewards the most accurate network among those *at or under* the FLOPs
threshold, Eq. 8 the cheapest network (in FLOPs) among those *at or above* the accuracy threshold.
Thresholds default to the space median, as in the paper's evaluation. Architectures that violate a
constraint all score 0 (reward) / 1 (loss), i.e. they tie.

Example:
    >>> from reward_models.fixed import h_flop_constraint, weighted_sum
    >>> h_flop_constraint().name
    'flop_constraint'
    >>> weighted_sum({"test_accuracy": 2, "latency": 1}, name="fast_and_good").name
    'fast_and_good'
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from natsbench_gym.rewards import (
    FIXED_METRICS,
    BuiltinMetric,
    ConstrainedMetric,
    FixedMetric,
    FunctionReward,
    RewardModel,
    ScoringContext,
    WeightedSum,
    as_reward_model,
    make_fixed_metric,
    utility,
)
from natsbench_gym.types import Metric

__all__ = [
    "ScoringContext",
    "RewardModel",
    "BuiltinMetric",
    "FixedMetric",
    "WeightedSum",
    "ConstrainedMetric",
    "FunctionReward",
    "FIXED_METRICS",
    "PAPER_METRICS",
    "make_fixed_metric",
    "as_reward_model",
    "utility",
    "h_accuracy",
    "h_latency",
    "h_params",
    "h_flops",
    "h_weighted",
    "h_flop_constraint",
    "h_accuracy_constraint",
    "weighted_sum",
    "constraint",
    "loss_many",
]

#: The synthetic users of the paper's Table I, in the table's row order (per dataset).
PAPER_METRICS: tuple[str, ...] = (
    "accuracy_constraint",
    "accuracy",
    "flop_constraint",
    "latency",
    "params",
    "weighted",
)

#: In user-built metrics, "accuracy" means the accuracy the scoring context optimises
#: (``ScoringContext.accuracy_metric``: validation for search, test for the paper's Table I).
_ACCURACY_ALIASES = frozenset({"accuracy", "acc"})


def _metric(name: Metric | str) -> Metric:
    if isinstance(name, str) and name.lower() in _ACCURACY_ALIASES:
        return Metric.VALID_ACCURACY  # stands for the context's accuracy (see natsbench_gym.rewards)
    return Metric.parse(name)


def h_accuracy() -> FixedMetric:
    """Eq. 3: the normalised accuracy (the scoring context's accuracy metric)."""
    return FixedMetric(Metric.VALID_ACCURACY, "accuracy")


def h_latency() -> FixedMetric:
    """Eq. 4: ``1 -`` the normalised latency on the context's device."""
    return FixedMetric(Metric.LATENCY, "latency")


def h_params() -> FixedMetric:
    """Eq. 5: ``1 -`` the normalised parameter count."""
    return FixedMetric(Metric.PARAMS, "params")


def h_flops() -> FixedMetric:
    """``1 -`` the normalised FLOPs (not in the paper's Table I, but one of its metrics)."""
    return FixedMetric(Metric.FLOPS, "flops")


def h_weighted(weights: Mapping[Metric | str, float] | None = None) -> WeightedSum:
    """Eq. 6: weighted mean of utilities; equal weights over accuracy, latency, params and FLOPs by default."""
    if weights is None:
        return WeightedSum()
    return weighted_sum(weights, name="weighted")


def h_flop_constraint(threshold: float | None = None) -> ConstrainedMetric:
    """Eq. 7: accuracy utility where FLOPs ``<= threshold`` (MFLOPs; default the space median), else 0."""
    return ConstrainedMetric(Metric.VALID_ACCURACY, Metric.FLOPS, threshold, name="flop_constraint")


def h_accuracy_constraint(threshold: float | None = None) -> ConstrainedMetric:
    """Eq. 8: FLOPs utility where accuracy ``>= threshold`` (percent; default the space median), else 0."""
    return ConstrainedMetric(Metric.FLOPS, Metric.VALID_ACCURACY, threshold, name="accuracy_constraint")


def weighted_sum(weights: Mapping[Metric | str, float], name: str = "weighted_sum") -> WeightedSum:
    """A user's weighted mean of utilities, e.g. ``weighted_sum({"accuracy": 3, "latency": 1})``.

    Args:
        weights: ``{metric: weight}``; metric names as in :class:`~natsbench_gym.types.Metric`, plus
            ``"accuracy"`` for the scoring context's accuracy. Weights must be ``>= 0``, not all 0.
        name: shown in logs and env ``info``.

    Raises:
        UnknownNameError: a metric name is unknown.
        ValueError: a weight is negative or not finite, or all are 0.
    """
    if not weights:
        raise ValueError("weighted_sum needs at least one {metric: weight}, got none")
    parsed: dict[Metric, float] = {}
    for m, w in weights.items():
        key = _metric(m)
        parsed[key] = parsed.get(key, 0.0) + float(w)
    return WeightedSum(parsed, name=name, skip_missing=False)


def constraint(
    objective: Metric | str,
    constrained: Metric | str,
    threshold: float | None = None,
    name: str | None = None,
) -> ConstrainedMetric:
    """Utility of ``objective`` among architectures whose ``constrained`` metric meets ``threshold``.

    A cost (FLOPs, params, latency, training time) meets it at or below ``threshold``, an accuracy at
    or above; ``threshold`` is in the metric's own units (``None``: the space median). Architectures
    that miss it score 0. ``constraint("accuracy", "latency", 5.0)`` is "the most accurate network
    that runs in 5 ms".
    """
    obj, con = _metric(objective), _metric(constrained)
    if name is None:
        name = f"{'accuracy' if obj is Metric.VALID_ACCURACY else obj.value}_under_{'accuracy' if con is Metric.VALID_ACCURACY else con.value}"
    return ConstrainedMetric(obj, con, threshold, name=name)


def loss_many(model: RewardModel, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
    """The loss form (lower is better) of any reward model.

    Built-in metrics use their own :meth:`~natsbench_gym.rewards.BuiltinMetric.loss_many`
    (``1 - reward``, in [0, 1]); a model with a ``loss_many`` method (a fitted RankNet) uses it; any
    other reward model's loss is its negated score.
    """
    if hasattr(model, "loss_many"):
        return np.asarray(model.loss_many(metrics, context), dtype=np.float64)
    if not isinstance(model, RewardModel):
        raise TypeError(f"loss_many needs a reward model (an object with score_many(metrics, context)), got {type(model).__name__}")
    return -np.asarray(model.score_many(metrics, context), dtype=np.float64)
