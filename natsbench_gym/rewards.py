"""How environments and agents see a reward model: a small protocol and the built-in fixed metrics.

A reward model scores architectures from their metrics; higher is better. The
:class:`RewardModel` protocol asks for three things: ``score_many(metrics, context) -> np.ndarray``,
``required_metrics(context)`` (which metrics to query) and ``precomputable`` (whether its scores are
a fixed function of the metrics, so they may be computed once for the whole space). A learned
RankNet from ``reward_models`` is one; this module never imports it. :func:`as_reward_model` makes
any reward-like value one: a fixed-metric name, a plain function of one architecture's metrics
``f({Metric: value}) -> float``, or an object with only ``score_many`` (it then reads every metric
the context has and is not precomputable), so consumers never check what a model has.

The fixed metrics are the MONAS-style metrics of the paper (Eqs. 3-8). Every metric is first
normalised to [0, 1] over the whole search space (:meth:`ScoringContext.normalized`) and turned into
a *utility* (1 is best): accuracy as is, costs (latency, params, FLOPs) as ``1 - normalised``. Then:

========================  =============================================================================
name                      reward (higher is better); the loss is ``1 - reward``
========================  =============================================================================
``accuracy``              utility of the accuracy (Eq. 3)
``latency``               utility of the latency on the configured device (Eq. 4)
``params``                utility of the parameter count (Eq. 5)
``flops``                 utility of the FLOPs
``weighted``              mean utility over accuracy, latency, params and FLOPs -- those the backend has (Eq. 6)
``flop_constraint``       accuracy utility if FLOPs <= threshold, else 0 (Eq. 7)
``accuracy_constraint``   FLOPs utility if accuracy >= threshold, else 0 (Eq. 8)
========================  =============================================================================

The paper's prose and its Eqs. 7-8 disagree on the direction of the constraints (the formulas
return the objective when the *cost exceeds* the threshold). We take the meaningful reading: Eq. 7
wants the most accurate network among those *under* the FLOPs threshold, Eq. 8 the cheapest network
among those *above* the accuracy threshold. Thresholds default to the space median.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from natsbench_gym.errors import InvalidConfigError, MissingMetricError, UnknownNameError
from natsbench_gym.types import Dataset, DeviceLatency, Metric, MetricStats

if TYPE_CHECKING:
    from natsbench_gym.benchmarks.base import Benchmark

__all__ = [
    "ScoringContext",
    "BuiltinMetric",
    "RewardModel",
    "RewardModelAdapter",
    "FixedMetric",
    "WeightedSum",
    "ConstrainedMetric",
    "FunctionReward",
    "FIXED_METRICS",
    "make_fixed_metric",
    "as_reward_model",
    "utility",
]

COST_METRICS = (Metric.LATENCY, Metric.PARAMS, Metric.FLOPS)


@dataclass(frozen=True)
class ScoringContext:
    """What a reward model needs besides the metrics: where they come from, for normalisation.

    Attributes:
        benchmark: the benchmark the metrics come from (for space-wide statistics).
        dataset: the dataset the metrics are for.
        budget: the training budget (epochs) of the accuracies.
        device: the latency device.
        accuracy_metric: the accuracy a reward optimises (validation for search, as NATS-Bench advises).
    """

    benchmark: Benchmark
    dataset: Dataset
    budget: int
    device: str | None = None
    accuracy_metric: Metric = Metric.VALID_ACCURACY

    @classmethod
    def create(cls, benchmark: Benchmark, dataset: Dataset | str, budget: int | None = None, device: str | None = None,
               accuracy_metric: Metric | str = Metric.VALID_ACCURACY) -> ScoringContext:
        """Build a context with every argument checked against ``benchmark``."""
        ds = benchmark.check_dataset(dataset)
        return cls(benchmark, ds, benchmark.check_budget(budget), benchmark.check_device(device), Metric.parse(accuracy_metric))

    def with_device(self, device: str | None) -> ScoringContext:
        """This context with another latency device (checked against the benchmark)."""
        device = self.benchmark.check_device(device)
        return self if device == self.device else dataclasses.replace(self, device=device)

    def _route(self, metric: Metric | DeviceLatency) -> tuple[Metric, str | None]:
        """The benchmark metric and device of a metric key (a :class:`DeviceLatency` names its own device)."""
        if isinstance(metric, DeviceLatency):
            return Metric.LATENCY, self.benchmark.check_device(metric.device)
        return metric, self.device

    def stats(self, metric: Metric | DeviceLatency) -> MetricStats:
        m, device = self._route(metric)
        return self.benchmark.stats(m, self.dataset, self.budget, device)

    def space_values(self, metric: Metric | DeviceLatency) -> np.ndarray:
        """Values of ``metric`` over the space (or the sample a live backend has): see ``Benchmark.space_values``."""
        m, device = self._route(metric)
        return self.benchmark.space_values(m, self.dataset, self.budget, device)

    def has(self, metric: Metric | DeviceLatency) -> bool:
        if isinstance(metric, DeviceLatency):
            return metric.device in self.benchmark.latency_devices and Metric.LATENCY in self.benchmark.available_metrics(
                self.dataset, self.budget
            )
        return metric in self.benchmark.available_metrics(self.dataset, self.budget) and (
            metric is not Metric.LATENCY or self.device is not None
        )

    def normalized(self, metric: Metric, values: np.ndarray) -> np.ndarray:
        """``values`` of ``metric`` mapped to [0, 1] by the space-wide min and max."""
        return np.clip(self.stats(metric).normalize(np.asarray(values, dtype=np.float64)), 0.0, 1.0)

    def query(self, archs, metrics: Sequence[Metric | DeviceLatency] | None = None) -> dict[Metric, np.ndarray]:
        """Metrics of ``archs`` in this context (a convenience for agents and reward models); a
        :class:`~natsbench_gym.types.DeviceLatency` key is the latency on its own device."""
        if metrics is None or not any(isinstance(m, DeviceLatency) for m in metrics):
            return self.benchmark.query_many(archs, self.dataset, self.budget, metrics, self.device)
        plain = [m for m in metrics if not isinstance(m, DeviceLatency)]
        out: dict[Any, np.ndarray] = {}
        if plain:
            out.update(self.benchmark.query_many(archs, self.dataset, self.budget, plain, self.device))
        for m in metrics:
            if isinstance(m, DeviceLatency) and m not in out:
                device = self.benchmark.check_device(m.device)
                out[m] = self.benchmark.query_many(archs, self.dataset, self.budget, [Metric.LATENCY], device)[Metric.LATENCY]
        return out


def utility(metric: Metric, values: np.ndarray, context: ScoringContext) -> np.ndarray:
    """Normalised value with 1 = best: accuracies as is, costs reversed."""
    norm = context.normalized(metric, values)
    return norm if metric.higher_is_better else 1.0 - norm


@runtime_checkable
class RewardModel(Protocol):
    """What environments, agents and users need of a reward model (higher is better).

    Use :func:`as_reward_model` to get one from anything reward-like.

    Attributes:
        precomputable: the scores are a fixed function of the metrics (a static reward, like the
            built-in metrics), so a consumer may score the whole space once and keep the scores;
            ``False`` for a model that can change (a learned model that is refitted) or must be
            asked each time.
    """

    precomputable: bool

    def required_metrics(self, context: ScoringContext) -> tuple[Metric, ...]:
        """The metrics :meth:`score_many` reads in ``context`` (what a consumer must query)."""
        ...

    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
        """Scores of ``n`` architectures given ``{Metric: array of n}``."""
        ...


class RewardModelAdapter:
    """An object that has ``score_many`` but not all of :class:`RewardModel`, seen as a full one.

    What it lacks gets the safe default: ``required_metrics`` is every metric the context has,
    ``precomputable`` is ``False`` (it is asked at each evaluation). Every other attribute (``name``,
    ``save``, ``member_scores`` ...) is the wrapped model's.

    Attributes:
        model: the wrapped object.
    """

    def __init__(self, model: Any) -> None:
        if not callable(getattr(model, "score_many", None)):
            raise InvalidConfigError(f"a reward model needs a score_many(metrics, context) method; {type(model).__name__} has none")
        self.model = model

    @property
    def precomputable(self) -> bool:
        return bool(getattr(self.model, "precomputable", False))

    @property
    def name(self) -> str:
        return str(getattr(self.model, "name", type(self.model).__name__))

    def required_metrics(self, context: ScoringContext) -> tuple[Metric, ...]:
        own = getattr(self.model, "required_metrics", None)
        if own is not None:
            return tuple(own(context))
        return tuple(m for m in Metric if context.has(m))

    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
        return self.model.score_many(metrics, context)

    def __getattr__(self, name: str) -> Any:
        if name == "model" or name.startswith("__"):  # not set yet (unpickling) or a protocol lookup
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"RewardModelAdapter({self.model!r})"


class BuiltinMetric(ABC):
    """Shared behaviour of the built-in metrics: which metrics they read, single scores, losses.

    Built-in metrics are pure functions of the metrics (``precomputable``): an env on a table
    scores the whole space with them once.
    """

    name: str = "metric"
    precomputable: ClassVar[bool] = True

    @abstractmethod
    def required_metrics(self, context: ScoringContext) -> tuple[Metric, ...]:
        """Metrics :meth:`score_many` reads in ``context``."""

    @abstractmethod
    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
        """Rewards (higher is better) of ``n`` architectures."""

    def score(self, metrics: Mapping[Metric, float], context: ScoringContext) -> float:
        """Score of one architecture."""
        return float(self.score_many({m: np.atleast_1d(v) for m, v in metrics.items()}, context)[0])

    def loss_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
        """The same metric as a loss (lower is better): ``1 - reward``."""
        return 1.0 - self.score_many(metrics, context)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _resolve(metric: Metric, context: ScoringContext) -> Metric:
    """The abstract "accuracy" of a metric definition means the context's accuracy metric."""
    return context.accuracy_metric if metric is Metric.VALID_ACCURACY else metric


def _need(metrics: Mapping[Metric, np.ndarray], metric: Metric, who: str) -> np.ndarray:
    if metric not in metrics:
        raise MissingMetricError(f"{who} needs {metric.value}, which the metrics given do not hold")
    return np.asarray(metrics[metric], dtype=np.float64)


@dataclass(frozen=True, repr=False)
class FixedMetric(BuiltinMetric):
    """Utility of one metric (Eqs. 3-5). ``Metric.VALID_ACCURACY`` stands for the context's accuracy."""

    metric: Metric
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", Metric.parse(self.metric))

    def required_metrics(self, context):
        return (_resolve(self.metric, context),)

    def score_many(self, metrics, context):
        m = _resolve(self.metric, context)
        return utility(m, _need(metrics, m, self.name or m.value), context)


@dataclass(frozen=True, repr=False)
class WeightedSum(BuiltinMetric):
    """Weighted mean of utilities (Eq. 6). Metrics the backend lacks are dropped when ``skip_missing``."""

    weights: Mapping[Metric, float] = field(default_factory=lambda: {Metric.VALID_ACCURACY: 1.0, Metric.LATENCY: 1.0, Metric.PARAMS: 1.0, Metric.FLOPS: 1.0})
    name: str = "weighted"
    skip_missing: bool = True

    def __post_init__(self) -> None:
        # Parse names now (a typo fails here, not at the first step) and reject weights that make the
        # mean meaningless: a zero total would divide by zero and score every architecture nan.
        weights = {Metric.parse(m): float(w) for m, w in self.weights.items()}
        bad = {str(m): w for m, w in weights.items() if not (np.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"weighted metric {self.name!r}: weights must be finite and >= 0, got {bad}")
        if not sum(weights.values()) > 0:
            raise ValueError(f"weighted metric {self.name!r}: at least one weight must be > 0, got {weights}")
        object.__setattr__(self, "weights", weights)

    def __hash__(self) -> int:  # the generated hash would fail on the weights dict
        return hash((type(self), tuple(sorted((m.value, w) for m, w in self.weights.items())), self.name, self.skip_missing))

    def _terms(self, context: ScoringContext) -> list[tuple[Metric, float]]:
        terms = []
        for m, w in self.weights.items():
            rm = _resolve(Metric.parse(m), context)
            if context.has(rm):
                terms.append((rm, float(w)))
            elif not self.skip_missing:
                raise MissingMetricError(f"weighted metric needs {rm.value}, which {context.benchmark.name} lacks")
        if not terms:
            raise MissingMetricError(f"none of the weighted metrics {[str(m) for m in self.weights]} is available")
        return terms

    def required_metrics(self, context):
        return tuple(m for m, _ in self._terms(context))

    def score_many(self, metrics, context):
        terms = self._terms(context)
        total = sum(w for _, w in terms)
        return sum(w * utility(m, _need(metrics, m, self.name), context) for m, w in terms) / total


@dataclass(frozen=True, repr=False)
class ConstrainedMetric(BuiltinMetric):
    """Utility of ``objective`` where ``constrained`` satisfies its threshold, else 0 (Eqs. 7-8).

    A cost (FLOPs, params, latency) satisfies it at or below ``threshold``; an accuracy at or above.
    ``threshold`` is in the metric's own units; ``None`` means the space median.
    """

    objective: Metric
    constrained: Metric
    threshold: float | None = None
    name: str = "constraint"

    def __post_init__(self) -> None:
        object.__setattr__(self, "objective", Metric.parse(self.objective))
        object.__setattr__(self, "constrained", Metric.parse(self.constrained))
        if self.threshold is not None and not np.isfinite(float(self.threshold)):
            raise ValueError(f"constraint {self.name!r}: threshold must be finite or None, got {self.threshold!r}")

    def required_metrics(self, context):
        return (_resolve(self.objective, context), _resolve(self.constrained, context))

    def threshold_value(self, context: ScoringContext) -> float:
        c = _resolve(self.constrained, context)
        return context.stats(c).median if self.threshold is None else float(self.threshold)

    def score_many(self, metrics, context):
        obj, c = self.required_metrics(context)
        values = _need(metrics, c, self.name)
        t = self.threshold_value(context)
        ok = values >= t if c.higher_is_better else values <= t
        return np.where(ok, utility(obj, _need(metrics, obj, self.name), context), 0.0)


@dataclass(frozen=True, repr=False)
class FunctionReward(BuiltinMetric):
    """Wraps ``f({Metric: float}) -> float`` (one architecture at a time) as a reward model."""

    fn: Callable[[Mapping[Metric, float]], float]
    name: str = "function"

    def required_metrics(self, context):
        return tuple(m for m in Metric if context.has(m))

    def score_many(self, metrics, context):
        keys = list(metrics)
        n = len(np.atleast_1d(metrics[keys[0]])) if keys else 0
        return np.array([float(self.fn({k: float(np.atleast_1d(metrics[k])[i]) for k in keys})) for i in range(n)])


#: The paper's fixed metrics by name (``h_<name>`` in the paper).
FIXED_METRICS: dict[str, Callable[[], BuiltinMetric]] = {
    "accuracy": lambda: FixedMetric(Metric.VALID_ACCURACY, "accuracy"),
    "latency": lambda: FixedMetric(Metric.LATENCY, "latency"),
    "params": lambda: FixedMetric(Metric.PARAMS, "params"),
    "flops": lambda: FixedMetric(Metric.FLOPS, "flops"),
    "weighted": lambda: WeightedSum(),
    "flop_constraint": lambda: ConstrainedMetric(Metric.VALID_ACCURACY, Metric.FLOPS, name="flop_constraint"),
    "accuracy_constraint": lambda: ConstrainedMetric(Metric.FLOPS, Metric.VALID_ACCURACY, name="accuracy_constraint"),
}


def make_fixed_metric(name: str) -> BuiltinMetric:
    """Build a fixed metric by name (``"accuracy"``, ``"h_accuracy"``, ``"weighted"``, ...)."""
    key = name[2:] if name.startswith("h_") else name
    if key not in FIXED_METRICS:
        raise UnknownNameError("fixed metric", name, FIXED_METRICS)
    return FIXED_METRICS[key]()


def as_reward_model(model: str | RewardModel | Callable[[Mapping[Metric, float]], float] | Any | None) -> RewardModel:
    """A :class:`RewardModel` for anything reward-like.

    Args:
        model: ``None`` (the ``"accuracy"`` metric), a fixed-metric name (:data:`FIXED_METRICS`, also
            as ``"h_<name>"``), a reward model (returned as is), an object with only
            ``score_many(metrics, context)`` (wrapped in a :class:`RewardModelAdapter`), or a function
            of one architecture's ``{Metric: value}`` (a :class:`FunctionReward`).

    Raises:
        UnknownNameError: an unknown fixed-metric name.
        InvalidConfigError: anything else (a ``TypeError`` too).
    """
    if model is None:
        return make_fixed_metric("accuracy")
    if isinstance(model, str):
        return make_fixed_metric(model)
    if isinstance(model, RewardModel):
        return model
    if callable(getattr(model, "score_many", None)):
        return RewardModelAdapter(model)
    if callable(model):
        return FunctionReward(model, getattr(model, "__name__", "function"))
    raise InvalidConfigError(
        f"reward_model must be a fixed-metric name ({', '.join(FIXED_METRICS)}), an object with "
        f"score_many(metrics, context), or a function of a metrics dict; got {type(model).__name__}"
    )
