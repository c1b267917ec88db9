"""Random search: uniform architectures without repeats, the baseline every NAS method must beat."""

from __future__ import annotations

from agents.base import SearchAgent
from agents.personalization import Personalization, PersonalizedSearch
from agents.proposals import sample_architecture

__all__ = ["RandomSearch"]


class RandomSearch(PersonalizedSearch, SearchAgent):
    """Evaluate uniformly random architectures, each at most once, until the budget is spent.

    The reward only decides which architecture is reported as best. With ``personalization`` the
    first architectures are judged and a metric is learned from them (see
    :class:`~agents.personalization.Personalization`); it then picks the best of the history.

    Args:
        seed: seeds the draws; the same seed gives the same history.
        personalization: learn the search metric from preferences first (default: use the env's reward).

    Example:
        >>> import gymnasium as gym, natsbench_gym
        >>> from agents.random_search import RandomSearch
        >>> env = gym.make("NATSBench-Topology-v0", dataset="cifar10", budget=200)  # doctest: +SKIP
        >>> RandomSearch(seed=0).search(env, budget=100).best.arch  # doctest: +SKIP
    """

    name = "random"

    def __init__(self, seed: int | None = None, personalization: Personalization | None = None) -> None:
        super().__init__(seed=seed)
        self.personalization = personalization

    def _search(self) -> None:
        seen: set[tuple[int, ...]] = set()
        if self.personalization is not None:
            seen.update(ev.encoding for ev in self._warm_start())
        space_size = self.space.size
        while len(seen) < space_size:
            enc = sample_architecture(self.env, self.rng)
            if enc in seen:
                continue
            seen.add(enc)
            self.evaluate(enc)
