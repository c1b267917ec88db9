"""Reward shaping for the policy-gradient agents: a reward replaced by its rank.

A NATS-Bench metric normalised over the space crowds the good architectures into a narrow band near 1
(on CIFAR-100 most of what a search meets after a few dozen evaluations lies within a few points of
the best), so the raw reward differences that a policy gradient follows are tiny and change scale
from dataset to dataset. :class:`RankShaping` hands the policy the *quantile* of the reward among the
distinct architectures evaluated so far in the search instead: scale-free, in ``[0, 1]``, and as
sharp among the best architectures as among the worst (the fitness shaping of evolution strategies,
Wierstra et al. 2014). Only what the policy learns from changes: the history, the budget and the
reported best keep the env's own reward.
"""

from __future__ import annotations

import bisect

from natsbench_gym.errors import UnknownNameError

__all__ = ["RankShaping", "REWARD_SHAPINGS", "check_reward_shaping"]

#: The accepted values of the agents' ``reward_shaping`` argument.
REWARD_SHAPINGS = ("none", "rank")


def check_reward_shaping(value: str) -> str:
    """``value`` if it is one of :data:`REWARD_SHAPINGS`; an :class:`UnknownNameError` (a ``ValueError``)
    naming the choices otherwise."""
    if value not in REWARD_SHAPINGS:
        raise UnknownNameError("reward_shaping", value, REWARD_SHAPINGS)
    return value


class RankShaping:
    """The mid-rank quantile of a reward among the distinct architectures seen so far.

    Each architecture (by its benchmark index) enters the reference set once, with its first reward;
    a repeat is ranked against that set without being added again, so a policy that keeps rebuilding
    one architecture does not flatten the scale. Ties share the mean of their ranks.

    Example:
        >>> shaping = RankShaping()
        >>> [shaping(i, r) for i, r in [(0, 0.5), (1, 0.9), (2, 0.7), (1, 0.9)]]
        [0.5, 0.75, 0.5, 0.8333333333333334]
    """

    def __init__(self) -> None:
        self._sorted: list[float] = []
        self._seen: set[int] = set()

    def __call__(self, index: int, reward: float) -> float:
        if reward != reward:  # nan: no architecture is worse
            return 0.0
        if index not in self._seen:
            self._seen.add(index)
            bisect.insort(self._sorted, reward)
        lo, hi = bisect.bisect_left(self._sorted, reward), bisect.bisect_right(self._sorted, reward)
        return (lo + 0.5 * (hi - lo)) / len(self._sorted)

    def __len__(self) -> int:
        return len(self._sorted)
