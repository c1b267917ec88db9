"""Synthetic users: judges that answer comparisons from a known metric, optionally inconsistently.

A :class:`SyntheticUser` stands in for the paper's *Human Preference* component. It prefers the
architecture with the higher utility under any reward model -- one of the paper's fixed metrics
(:mod:`reward_models.fixed`), a user-built weighted sum or constraint, or any function of one
architecture's metrics -- and can be made to behave like an inconsistent human with a
:class:`NoiseModel`:

* ``temperature`` > 0: Bradley-Terry choice, ``P(a) = sigmoid((u_a - u_b) / temperature)`` on the
  utilities (which the fixed metrics put in [0, 1]) -- close calls become coin flips;
* ``flip_probability`` > 0: after deciding, the answer is reversed with this probability -- slips;
* ``tie_tolerance``: utilities closer than this are judged a tie (exactly equal ones always are,
  unless a temperature is set).

All randomness comes from the ``np.random.Generator`` passed to :meth:`SyntheticUser.judge_many`.

Example:
    >>> import numpy as np, natsbench_gym  # doctest: +SKIP
    >>> from natsbench_gym.rewards import ScoringContext
    >>> from reward_models.users import SyntheticUser
    >>> bench = natsbench_gym.load_benchmark("topology")  # doctest: +SKIP
    >>> ctx = ScoringContext.create(bench, "cifar100", 200)  # doctest: +SKIP
    >>> user = SyntheticUser("latency", ctx)  # doctest: +SKIP
    >>> user.judge(11, 284, np.random.default_rng(0)).outcome  # doctest: +SKIP
    <Outcome.B: 'b'>
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from natsbench_gym.rewards import RewardModel, ScoringContext, as_reward_model
from natsbench_gym.types import Metric
from reward_models.bradley_terry import preference_probability
from reward_models.preferences import ArchRef, Comparison, Outcome

__all__ = ["NoiseModel", "SyntheticUser"]

logger = logging.getLogger(__name__)


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
        needed = self.reward.required_metrics(self.context) if hasattr(self.reward, "required_metrics") else None
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
