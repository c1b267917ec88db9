"""Builders for the paper's fixed (MONAS-style) metrics, Eqs. 3-8, and for user-defined ones.

The metrics themselves, their normalisation and the reading of Eqs. 7-8 are documented once, in
:mod:`natsbench_gym.rewards` (environments need them without this package). This module adds what
a user building a metric wants:

* one builder per metric of the paper, named as there: :func:`h_accuracy` (Eq. 3), :func:`h_latency`
  (Eq. 4), :func:`h_params` (Eq. 5), :func:`h_weighted` (Eq. 6), :func:`h_flop_constraint` (Eq. 7)
  and :func:`h_accuracy_constraint` (Eq. 8);
* :func:`weighted_sum` and :func:`constraint` over any metric, with metric names as strings;
* :class:`MONASReward`, MONAS's own mixed reward;
* :data:`PAPER_METRICS`, the six synthetic users of the paper's Table I in the table's row order;
* :func:`loss_many`, the loss form (lower is better) of any reward model.

Example:
    >>> from reward_models.fixed import h_flop_constraint, weighted_sum
    >>> h_flop_constraint().name
    'flop_constraint'
    >>> weighted_sum({"test_accuracy": 2, "latency": 1}, name="fast_and_good").name
    'fast_and_good'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from natsbench_gym.errors import MissingMetricError
from natsbench_gym.rewards import (
    BuiltinMetric,
    ConstrainedMetric,
    FixedMetric,
    RewardModel,
    ScoringContext,
    WeightedSum,
    utility,
)
from natsbench_gym.types import Metric

__all__ = [
    "PAPER_METRICS",
    "h_accuracy",
    "h_latency",
    "h_params",
    "h_flops",
    "h_weighted",
    "h_flop_constraint",
    "h_accuracy_constraint",
    "weighted_sum",
    "constraint",
    "MONASReward",
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


@dataclass(frozen=True, repr=False)
class MONASReward(BuiltinMetric):
    """MONAS's mixed reward ``alpha * accuracy - (1 - alpha) * cost``, both normalised to [0, 1].

    MONAS trades accuracy against energy; NATS-Bench has no energy, so the cost is a measured one of
    the benchmark (latency on the env's device by default, or params / FLOPs). Pass an instance as the
    env's ``reward_model``; on table backends it is precomputed over the space like the paper's metrics.

    Args:
        alpha: weight of the accuracy (MONAS: 0.25 ... 0.75).
        cost: the cost metric.
    """

    alpha: float = 0.5
    cost: Metric = Metric.LATENCY
    name: str = "monas"

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"MONASReward alpha must be in [0, 1], got {self.alpha}")
        if Metric.parse(self.cost).higher_is_better:
            raise ValueError(f"MONASReward cost must be a cost (latency, params, flops), got {self.cost}")

    def required_metrics(self, context: ScoringContext) -> tuple[Metric, ...]:
        return (context.accuracy_metric, Metric.parse(self.cost))

    def score_many(self, metrics, context):
        acc, cost = self.required_metrics(context)
        for m in (acc, cost):
            if m not in metrics:
                raise MissingMetricError(f"MONASReward needs {m.value}, which the metrics given do not hold")
        accuracy = utility(acc, np.asarray(metrics[acc], dtype=np.float64), context)
        return self.alpha * accuracy - (1.0 - self.alpha) * context.normalized(cost, np.asarray(metrics[cost], dtype=np.float64))


def loss_many(model: RewardModel, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
    """The loss form (lower is better) of any reward model.

    Built-in metrics use their own :meth:`~natsbench_gym.rewards.BuiltinMetric.loss_many`
    (``1 - reward``, in [0, 1]); a model with a ``loss_many`` method (a fitted RankNet) uses it; any
    other reward model's loss is its negated score.
    """
    if hasattr(model, "loss_many"):
        return np.asarray(model.loss_many(metrics, context), dtype=np.float64)
    if not callable(getattr(model, "score_many", None)):
        raise TypeError(f"loss_many needs a reward model (an object with score_many(metrics, context)), got {type(model).__name__}")
    return -np.asarray(model.score_many(metrics, context), dtype=np.float64)
