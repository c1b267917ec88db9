"""The paper's *Human Preference* component: whoever states which of two architectures is better.

The search asks a :class:`Judge` about pairs and fits its reward model on the answers; who answers
does not matter to it:

* :class:`Judge` -- the protocol: ``judge(pairs, rng=...) -> list[Comparison]`` (``pairs``: a
  :class:`~reward_models.selection.PairBatch` or any sequence of ``(index a, index b)``);
* :class:`SyntheticUser` -- a judge that prefers the architecture with the higher utility under a
  known reward model, optionally inconsistently (:class:`NoiseModel`), standing in for a person;
* the synthetic preferences beyond the paper's six (:data:`EXTRA_USERS`, built by
  :func:`make_synthetic_preference`, e.g. on :class:`UtilityUser`), for testing that a learned
  reward model does not only work for the users it was built around;
* a person: ``preference_ui.SearchJudge`` serves the pairs a running search asks for on the web page
  or in the terminal UI (it lives in :mod:`preference_ui`, which imports this package, not the other
  way round).

A :class:`SyntheticUser`'s preference is one of the paper's fixed metrics
(:mod:`reward_models.fixed`), a user-built weighted sum or constraint, one of :data:`EXTRA_USERS`, or
any function of one architecture's metrics; a :class:`NoiseModel` makes it behave like an
inconsistent human:

* ``temperature`` > 0: Bradley-Terry choice, ``P(a) = sigmoid((u_a - u_b) / temperature)`` on the
  utilities (which the fixed metrics put in [0, 1]) -- close calls become coin flips;
* ``flip_probability`` > 0: after deciding, the answer is reversed with this probability -- slips;
* ``tie_tolerance``: utilities closer than this are judged a tie (exactly equal ones always are,
  unless a temperature is set).

All randomness comes from the ``np.random.Generator`` passed to :meth:`SyntheticUser.judge_many` (and
the seed passed to :func:`make_synthetic_preference`).

Example:
    >>> import numpy as np, natsbench_gym  # doctest: +SKIP
    >>> from natsbench_gym.rewards import ScoringContext
    >>> from reward_models.human_preference import SyntheticUser, make_synthetic_preference
    >>> bench = natsbench_gym.load_benchmark("topology")  # doctest: +SKIP
    >>> ctx = ScoringContext.create(bench, "cifar100", 200)  # doctest: +SKIP
    >>> user = SyntheticUser("latency", ctx)  # doctest: +SKIP
    >>> user.judge(11, 284, np.random.default_rng(0)).outcome  # doctest: +SKIP
    <Outcome.B: 'b'>
    >>> SyntheticUser(make_synthetic_preference("random_weighted", ctx, seed=3), ctx)  # doctest: +SKIP
    SyntheticUser('synthetic:random_weighted', noise=NoiseModel(temperature=0.0, flip_probability=0.0, tie_tolerance=0.0))
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import (
    FIXED_METRICS,
    ConstrainedMetric,
    RewardModel,
    ScoringContext,
    as_reward_model,
    make_fixed_metric,
    utility,
)
from natsbench_gym.types import Metric
from reward_models.bradley_terry import preference_probability
from reward_models.preferences import ArchRef, Comparison, Outcome

__all__ = [
    "Judge",
    "NoiseModel",
    "SyntheticUser",
    "UtilityUser",
    "DeviceUser",
    "EXTRA_USERS",
    "OUT_OF_FAMILY_USERS",
    "NON_MONOTONE_USERS",
    "make_synthetic_preference",
    "make_user",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class Judge(Protocol):
    """Whoever states preferences: ``judge(pairs, rng=...) -> comparisons``.

    ``pairs`` is a :class:`~reward_models.selection.PairBatch` (or any sequence) of ``(index a,
    index b)``; the answer is one :class:`~reward_models.preferences.Comparison` per pair, in the
    same order. A judge may draw from ``rng`` (a noisy :class:`SyntheticUser` does) and may take as
    long as it needs (a person behind ``preference_ui.SearchJudge`` does). :class:`SyntheticUser`
    is one; ``preference_ui.SearchJudge`` is a person.
    """

    def __call__(self, pairs: Sequence[tuple[int, int]], *, rng: np.random.Generator | None = None) -> Sequence[Comparison]:
        ...


@dataclass(frozen=True)
class NoiseModel:
    """How a synthetic user errs. The default never errs.

    Attributes:
        temperature: Bradley-Terry temperature on the utility difference (0: deterministic).
        flip_probability: probability of reversing a decided (non-tie) answer, in [0, 0.5].
        tie_tolerance: utility differences at or below this are ties (>= 0).
    """

    temperature: float = 0.0
    flip_probability: float = 0.0
    tie_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be finite and >= 0, got {self.temperature!r}")
        if not 0 <= self.flip_probability <= 0.5:
            raise ValueError(
                f"flip_probability must be in [0, 0.5] (above 0.5 the user prefers the worse one), got {self.flip_probability!r}"
            )
        if not (math.isfinite(self.tie_tolerance) and self.tie_tolerance >= 0):
            raise ValueError(f"tie_tolerance must be finite and >= 0, got {self.tie_tolerance!r}")

    @property
    def is_noiseless(self) -> bool:
        return self.temperature == 0 and self.flip_probability == 0

    def decide(self, utility_a: np.ndarray, utility_b: np.ndarray, rng: np.random.Generator) -> list[Outcome]:
        """Outcomes of comparisons between architectures with these utilities."""
        ua = np.asarray(utility_a, dtype=np.float64)
        ub = np.asarray(utility_b, dtype=np.float64)
        diff = ua - ub
        tie = np.abs(diff) <= self.tie_tolerance
        if self.temperature > 0:
            a_wins = rng.random(diff.shape) < preference_probability(ua, ub, self.temperature)
            tie = tie & (self.tie_tolerance > 0)  # with a temperature only an explicit tolerance makes ties
        else:
            a_wins = diff > 0
        if self.flip_probability > 0:
            a_wins = a_wins ^ (rng.random(diff.shape) < self.flip_probability)
        return [Outcome.TIE if t else (Outcome.A if w else Outcome.B) for t, w in zip(tie.tolist(), a_wins.tolist(), strict=True)]


class SyntheticUser:
    """A judge that prefers the architecture a reward model scores higher.

    Args:
        preference: a fixed-metric name (``"accuracy"``, ``"h_weighted"``, ...), a reward model
            (anything with ``score_many(metrics, context)``), or a function of one architecture's
            metrics ``f({Metric: value}) -> float``.
        context: benchmark, dataset, budget and device the metrics come from.
        noise: how the user errs (default: never).
        name: the ``judge`` of the comparisons it makes (default ``"synthetic:<metric name>"``).
    """

    def __init__(
        self,
        preference: str | RewardModel | Callable[[Mapping[Metric, float]], float],
        context: ScoringContext,
        noise: NoiseModel | None = None,
        name: str | None = None,
    ) -> None:
        self.reward: RewardModel = as_reward_model(preference)
        self.context = context
        self.noise = noise or NoiseModel()
        label = getattr(self.reward, "name", None) or type(self.reward).__name__
        self.name = name or f"synthetic:{label}"

    def utilities(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        """The user's (noise-free) utility of each architecture."""
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        needed = self.reward.required_metrics(self.context)
        return np.asarray(self.reward.score_many(self.context.query(idx, needed), self.context), dtype=np.float64)

    def judge_many(
        self,
        pairs: Iterable[tuple[int, int]],
        rng: np.random.Generator,
        selector: str = "manual",
        timestamp: float | None = None,
    ) -> list[Comparison]:
        """Judge each ``(index a, index b)``; one vectorised metric query for all of them."""
        pairs = [(int(a), int(b)) for a, b in pairs]
        if not pairs:
            return []
        idx = np.array(pairs, dtype=np.int64)
        u = self.utilities(idx.ravel()).reshape(idx.shape)
        outcomes = self.noise.decide(u[:, 0], u[:, 1], rng)
        bench = self.context.benchmark
        now = time.time() if timestamp is None else float(timestamp)
        return [
            Comparison(
                bench.space.kind,
                ArchRef(a, bench.arch_str(a)),
                ArchRef(b, bench.arch_str(b)),
                outcome,
                self.name,
                now,
                selector,
                self.context.dataset.value,
            )
            for (a, b), outcome in zip(pairs, outcomes, strict=True)
        ]

    def __call__(self, pairs: Iterable[tuple[int, int]], *, rng: np.random.Generator | None = None) -> list[Comparison]:
        """Judge pairs, e.g. a :class:`~reward_models.selection.PairBatch` (its strategy is recorded).

        This makes a synthetic user a *judge* (``judge(pairs, rng=...)``), interchangeable with a
        person behind the preference interface. A noisy user needs ``rng``.
        """
        if rng is None:
            if not self.noise.is_noiseless:
                raise ValueError(f"{self.name} judges with noise ({self.noise}); pass rng=np.random.default_rng(seed)")
            rng = np.random.default_rng(0)  # never drawn from: a noiseless user is deterministic
        return self.judge_many(pairs, rng, selector=getattr(pairs, "strategy", "manual"))

    def judge(self, a: int, b: int, rng: np.random.Generator, selector: str = "manual") -> Comparison:
        """Judge one pair."""
        return self.judge_many([(a, b)], rng, selector)[0]

    def __repr__(self) -> str:
        return f"SyntheticUser({self.name!r}, noise={self.noise})"


# --- synthetic preferences beyond the paper's six -----------------------------------------------------
#: Synthetic users beyond the paper's six (:data:`reward_models.fixed.PAPER_METRICS`), for checking
#: that a learned reward model does not only work for the users it was built around
#: (``scripts/reproduce_table1.py --metrics random_weighted,...``; docs/table1.md):
#:
#: * ``random_weighted`` -- a weighted sum of the four utilities with Dirichlet(1) weights drawn from
#:   the seed (inside RankNet's metric family, but not its mean);
#: * ``latency_constraint`` -- the fastest network among those whose accuracy is above the space's
#:   70th percentile (inside the family, not the median threshold);
#: * ``worst_of`` -- ``min(accuracy utility, latency utility)`` (monotone, outside the family);
#: * ``sweet_spot`` -- accuracy utility minus the distance of the latency utility from 0.5
#:   (non-monotone, outside the family).
EXTRA_USERS: tuple[str, ...] = ("random_weighted", "latency_constraint", "worst_of", "sweet_spot")


class UtilityUser:
    """A preference computed from the four utilities -- accuracy, latency, params, FLOPs -- at once.

    Each utility is the metric normalised over the whole space with 1 best
    (:func:`natsbench_gym.rewards.utility`); ``fn(accuracy, latency, params, flops)`` gets the four
    arrays and returns the scores (vectorised).

    Args:
        name: the preference's name (a :class:`SyntheticUser` judges as ``"synthetic:<name>"``).
        fn: scores from the four utility arrays.

    Example:
        >>> import numpy as np
        >>> from reward_models.human_preference import UtilityUser
        >>> worst_of = UtilityUser("worst_of", lambda acc, lat, par, flo: np.minimum(acc, lat))
        >>> worst_of.name
        'worst_of'
    """

    #: A fixed function of fixed utilities: the env may score the whole space once.
    precomputable = True

    def __init__(self, name: str, fn: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> None:
        self.name, self.fn = name, fn

    def required_metrics(self, context: ScoringContext) -> tuple[Metric, ...]:
        """The context's accuracy metric, latency, params and FLOPs, in ``fn``'s argument order."""
        return (context.accuracy_metric, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS)

    def score_many(self, metrics: Mapping[Metric, np.ndarray], context: ScoringContext) -> np.ndarray:
        """``fn`` of the four utilities of ``n`` architectures."""
        u = [utility(m, metrics[m], context) for m in self.required_metrics(context)]
        return self.fn(*u)

    def __repr__(self) -> str:
        return f"UtilityUser({self.name!r})"


def make_synthetic_preference(
    name: str, context: ScoringContext, seed: int | np.random.SeedSequence | None = None
) -> RewardModel:
    """The reward model a synthetic user of this name prefers by.

    Args:
        name: one of the paper's fixed metrics (``"accuracy"``, ``"weighted"``, ``"flop_constraint"``
            ...; see :func:`natsbench_gym.rewards.make_fixed_metric`) or of :data:`EXTRA_USERS`.
        context: the scoring context (``latency_constraint`` takes its threshold from the space).
        seed: seeds the user's own random choices; needed by ``random_weighted`` (its weights), the
            only one that has any. The same seed gives the same user.

    Raises:
        UnknownNameError: ``name`` is neither, with the closest known name.
        ValueError: ``random_weighted`` without a seed.
    """
    if name == "random_weighted":
        if seed is None:
            raise ValueError("the random_weighted user draws its weights: pass seed= (an int or a np.random.SeedSequence)")
        w = np.random.default_rng(seed).dirichlet(np.ones(4))
        return UtilityUser(name, lambda acc, lat, par, flo: w[0] * acc + w[1] * lat + w[2] * par + w[3] * flo)
    if name == "latency_constraint":
        threshold = float(np.quantile(context.space_values(context.accuracy_metric), 0.7))
        return ConstrainedMetric(Metric.LATENCY, context.accuracy_metric, threshold, name=name)
    if name == "worst_of":
        return UtilityUser(name, lambda acc, lat, par, flo: np.minimum(acc, lat))
    if name == "sweet_spot":
        return UtilityUser(name, lambda acc, lat, par, flo: acc - np.abs(lat - 0.5))
    try:
        return make_fixed_metric(name)
    except UnknownNameError:
        raise UnknownNameError("synthetic preference", name, (*FIXED_METRICS, *EXTRA_USERS)) from None


# --- out-of-family users: what the metric family cannot say ------------------------------------------
#: Synthetic users outside RankNet's metric family, for the interactive personalization benchmark
#: (docs/personalization.md), each a kind of preference a person may hold:
#:
#: * ``cobb_douglas`` -- a non-linear trade-off, ``accuracy^0.6 * latency^0.4`` (utilities);
#: * ``latency_knee`` -- accuracy, with latency free up to a knee and then costly:
#:   ``accuracy - 3 * max(0, latency cost - 0.4)`` (latency cost = 1 - latency utility);
#: * ``latency_class_then_accuracy`` -- lexicographic: the fastest of three latency classes
#:   (latency utility in thirds) first, then the best accuracy within it;
#: * ``near_best_then_cheapest`` -- "near the best accuracy, then the cheapest": among the
#:   architectures within one accuracy point of the space's best, the fewest FLOPs; below that,
#:   accuracy;
#: * ``pixel3_threshold`` -- the best accuracy among the architectures whose latency *on a Pixel 3*
#:   is below that device's median (the env reads another device's latency);
#: * ``two_devices`` -- ``0.5 accuracy + 0.25 latency on a Raspberry Pi 4 + 0.25 latency on a
#:   Samsung A50`` (utilities; two devices, neither the env's);
#: * ``mid_size`` -- accuracy minus the distance of the params utility from 0.6: neither the
#:   smallest nor the largest networks (non-monotone);
#: * ``latency_band`` -- the best accuracy among the architectures whose latency utility lies in
#:   [0.35, 0.65] (a latency slot: neither the slowest nor needlessly fast), below that accuracy
#:   less 1 (non-monotone, lexicographic);
#: * ``params_quadratic`` -- accuracy minus ``4 * (params utility - 0.35)^2``: a network about a
#:   third of the way from the largest to the smallest, by a smooth penalty (non-monotone).
OUT_OF_FAMILY_USERS: tuple[str, ...] = (
    "cobb_douglas",
    "latency_knee",
    "latency_class_then_accuracy",
    "near_best_then_cheapest",
    "pixel3_threshold",
    "two_devices",
    "mid_size",
    "latency_band",
    "params_quadratic",
)

#: The synthetic users whose utility is not monotone in the metrics (a "sweet spot").
NON_MONOTONE_USERS: tuple[str, ...] = ("sweet_spot", "mid_size", "latency_band", "params_quadratic")


class DeviceUser(SyntheticUser):
    """A synthetic user whose utility reads the latency on devices of its own, not the env's.

    Args:
        name: the preference's name (judges as ``"synthetic:<name>"``).
        context: benchmark, dataset and budget (its device is not used).
        devices: the latency devices the user cares about (names of the benchmark's 27).
        fn: ``fn(accuracy, params, flops, *latencies)``: scores from the utilities (1 best), one
            latency utility per device, vectorised.
        noise: how the user errs (default: never).
    """

    def __init__(
        self,
        name: str,
        context: ScoringContext,
        devices: Sequence[str],
        fn: Callable[..., np.ndarray],
        noise: NoiseModel | None = None,
    ) -> None:
        if not devices:
            raise ValueError("a DeviceUser needs at least one latency device")
        self.reward = None
        self.context = context
        self.devices = tuple(context.benchmark.check_device(d) for d in devices)
        self._device_contexts = [
            ScoringContext(context.benchmark, context.dataset, context.budget, d, context.accuracy_metric) for d in self.devices
        ]
        self.fn = fn
        self.noise = noise or NoiseModel()
        self.name = f"synthetic:{name}"

    def utilities(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        ctx = self.context
        own = (ctx.accuracy_metric, Metric.PARAMS, Metric.FLOPS)
        values = ctx.query(idx, own)
        u = [utility(m, values[m], ctx) for m in own]
        for dctx in self._device_contexts:
            u.append(utility(Metric.LATENCY, dctx.query(idx, (Metric.LATENCY,))[Metric.LATENCY], dctx))
        return np.asarray(self.fn(*u), dtype=np.float64)

    def __repr__(self) -> str:
        return f"DeviceUser({self.name!r}, devices={self.devices})"


def _out_of_family(name: str, context: ScoringContext) -> RewardModel | None:
    """The :class:`UtilityUser` of an out-of-family preference that reads the context's own metrics."""
    if name == "cobb_douglas":
        return UtilityUser(name, lambda acc, lat, par, flo: np.power(acc, 0.6) * np.power(lat, 0.4))
    if name == "latency_knee":
        return UtilityUser(name, lambda acc, lat, par, flo: acc - 3.0 * np.maximum(0.0, (1.0 - lat) - 0.4))
    if name == "latency_class_then_accuracy":
        return UtilityUser(name, lambda acc, lat, par, flo: np.floor(np.minimum(lat, 0.999) * 3.0) + acc)
    if name == "near_best_then_cheapest":
        stats = context.stats(context.accuracy_metric)
        span = max(float(stats.max - stats.min), 1e-12)
        near = 1.0 - 1.0 / span  # utility of "one accuracy point below the best"
        return UtilityUser(name, lambda acc, lat, par, flo: np.where(acc >= near, 1.0 + flo, acc))
    if name == "mid_size":
        return UtilityUser(name, lambda acc, lat, par, flo: acc - np.abs(par - 0.6))
    if name == "latency_band":
        return UtilityUser(name, lambda acc, lat, par, flo: np.where((lat >= 0.35) & (lat <= 0.65), acc, acc - 1.0))
    if name == "params_quadratic":
        return UtilityUser(name, lambda acc, lat, par, flo: acc - 4.0 * (par - 0.35) ** 2)
    return None


def make_user(
    name: str, context: ScoringContext, seed: int | np.random.SeedSequence | None = None, noise: NoiseModel | None = None
) -> SyntheticUser:
    """A synthetic judge of any preference this package knows, by name.

    Args:
        name: a fixed metric (the paper's six and more), one of :data:`EXTRA_USERS` or of
            :data:`OUT_OF_FAMILY_USERS`.
        context: the scoring context of the search (the device users read their own devices).
        seed: the user's own random choices (``random_weighted`` needs one).
        noise: how the user errs (default: never).

    Raises:
        UnknownNameError: an unknown name, with the closest known one.
    """
    if name == "pixel3_threshold":
        median = float(np.median(ScoringContext(context.benchmark, context.dataset, context.budget, "pixel3", context.accuracy_metric).space_values(Metric.LATENCY)))
        stats = context.benchmark.stats(Metric.LATENCY, context.dataset, context.budget, "pixel3")
        cut = 1.0 - float(stats.normalize(np.asarray([median]))[0])  # latency utility at the median
        return DeviceUser(name, context, ("pixel3",), lambda acc, par, flo, lat: np.where(lat >= cut, 1.0 + acc, acc - 1.0), noise)
    if name == "two_devices":
        return DeviceUser(name, context, ("raspi4", "samsung_a50"), lambda acc, par, flo, l1, l2: 0.5 * acc + 0.25 * l1 + 0.25 * l2, noise)
    model = _out_of_family(name, context)
    if model is None:
        try:
            model = make_synthetic_preference(name, context, seed)
        except UnknownNameError:
            raise UnknownNameError("synthetic user", name, (*FIXED_METRICS, *EXTRA_USERS, *OUT_OF_FAMILY_USERS)) from None
    return SyntheticUser(model, context, noise)
