"""Regularized (aging) evolution, and the paper's personalized evolution (Alg. 1).

Real et al.'s regularized evolution keeps a population of ``p`` architectures in the order they were
evaluated. Each cycle samples ``s`` of them uniformly without replacement, mutates the fittest of the
sample (one decision changed), evaluates the child, appends it and drops the *oldest* member -- not
the worst: aging is the regularization. The initial population is drawn uniformly and counts in the
budget, as in the paper ("the population generation ... is included in the number of epochs").

With ``personalization`` this is the paper's Alg. 1:

1. evaluate the initial population through the env (lines 11-16; the rewards the env gives them
   now do not matter);
2. draw pairs among (the first ``num_architectures`` of) the population (Alg. 2), have them judged
   (a synthetic user or a person), fit RankNet on the judgements (lines 17-20) and make it the env's
   reward model, so every later evaluation is rewarded by the learned metric through the env;
3. re-score the initial population under the learned metric from the metrics already in the history
   (``score_many`` in the env's scoring context: nothing is evaluated again, nothing extra counted);
4. continue aging evolution with the learned fitness (lines 21-29) and report the best of the history
   under the learned metric (line 30).
"""

from __future__ import annotations

from collections import deque

from agents.base import Evaluation, SearchAgent
from agents.errors import AgentConfigError
from agents.personalization import Personalization, PersonalizedSearch
from agents.proposals import mutate_architecture

__all__ = ["RegularizedEvolution", "PersonalizedEvolution"]


class RegularizedEvolution(PersonalizedSearch, SearchAgent):
    """Regularized evolution (aging evolution, Real et al. 2019), optionally personalized (Alg. 1).

    Args:
        population_size: ``p``, the population kept (the paper: 10).
        sample_size: ``s``, the tournament sample (the paper: 5); ``1 <= s <= p``.
        seed: seeds sampling and mutation; the same seed gives the same history.
        personalization: learn the fitness from preferences over the initial population (Alg. 1).

    Attributes:
        population: the current population, oldest first (during and after a search).

    Example:
        >>> import gymnasium as gym, natsbench_gym
        >>> from agents.evolution import RegularizedEvolution
        >>> env = gym.make("NATSBench-Topology-v0", dataset="cifar100", budget=200)  # doctest: +SKIP
        >>> result = RegularizedEvolution(10, 5, seed=0).search(env, budget=100)  # doctest: +SKIP
        >>> result.best.metrics["test_accuracy"]  # doctest: +SKIP
    """

    name = "re"

    def __init__(
        self,
        population_size: int = 10,
        sample_size: int = 5,
        seed: int | None = None,
        personalization: Personalization | None = None,
    ) -> None:
        if population_size < 1:
            raise AgentConfigError(f"population_size must be >= 1, got {population_size}; the paper uses 10")
        if not 1 <= sample_size <= population_size:
            raise AgentConfigError(
                f"sample_size must be in 1..population_size={population_size}, got {sample_size}; "
                "the tournament samples that many members of the population (the paper: 5 of 10)"
            )
        super().__init__(seed=seed)
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.personalization = personalization
        self.population: deque[Evaluation] = deque()

    def _search(self) -> None:
        self.population = deque()
        for i in range(self.population_size):
            # uniformly random; with a warm start, earlier users' recommendations first
            self.population.append(self.evaluate(self._initial_architecture(i, self.population_size)))
        if self.personalization is not None:
            self._learn_metric(list(self.population))
        while True:
            members = list(self.population)
            picks = self.rng.choice(len(members), size=self.sample_size, replace=False)
            # Fittest of the sample; the lowest pick index (the oldest) wins ties, as max() does.
            parent = max((members[i] for i in sorted(picks.tolist())), key=self.search_score)
            child = self.evaluate(mutate_architecture(self.env, parent.encoding, self.rng))
            self.population.append(child)
            self.population.popleft()  # aging: the oldest goes, whatever its fitness


class PersonalizedEvolution(RegularizedEvolution):
    """Alg. 1 of the paper: :class:`RegularizedEvolution` with a metric learned from preferences.

    Args:
        personalization: who judges, how many comparisons among how many architectures, and the
            ranking model (see :class:`~agents.personalization.Personalization`).
        population_size, sample_size, seed: as for :class:`RegularizedEvolution`.
    """

    name = "re_personalized"

    def __init__(
        self,
        personalization: Personalization,
        population_size: int = 10,
        sample_size: int = 5,
        seed: int | None = None,
    ) -> None:
        if personalization is None:
            raise AgentConfigError(
                "PersonalizedEvolution needs a Personalization, got None; pass personalization=Personalization(judge) "
                "or use RegularizedEvolution without one"
            )
        super().__init__(population_size, sample_size, seed, personalization)
