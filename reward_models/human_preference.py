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

__all__ = ["Judge", "NoiseModel", "SyntheticUser", "UtilityUser", "EXTRA_USERS", "make_synthetic_preference"]

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
