"""Personalization for any search agent: learn the search metric from judged pairs (the paper's Fig. 1).

:class:`Personalization` says who judges and how much: ``num_comparisons`` pairs (the paper: 10)
drawn among ``num_architectures`` evaluated architectures (the paper: 5) by a pair selector (Alg. 2,
random pairs by default), judged by a ``judge`` (a synthetic user of a fixed metric, or a person
through the preference interface), and a ranking model fitted on the judgements (RankNet, Alg. 3).
The fitted model becomes the env's reward model (``env.unwrapped.set_reward_model``), so from then on
every evaluation is rewarded by the learned metric *through the env*.

:class:`PersonalizedSearch` is the mixin that gives an agent this ability. Evolution judges members
of its initial population (Alg. 1); the other agents first evaluate ``num_architectures`` random
architectures (:meth:`PersonalizedSearch._warm_start`). Either way those evaluations count in the
budget, and the evaluations made before the metric was learned are re-scored under it from the
metrics already in the history (the model's ``score_many`` in the env's scoring context; nothing is
evaluated twice). The result's ``scores`` and ``best`` are then under the learned metric, and its
``info`` holds the ``learned_metric`` and the ``comparisons``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.base import BudgetExhausted, Evaluation, SearchBudget, SearchCallback, SearchResult
from agents.errors import AgentConfigError
from agents.proposals import sample_architecture
from natsbench_gym.types import Metric
from reward_models.human_preference import Judge

__all__ = ["Personalization", "PersonalizedSearch", "metrics_of"]

logger = logging.getLogger(__name__)


@dataclass
class Personalization:
    """How a search learns its metric from preferences.

    Args:
        judge: states a preference for each pair (a :class:`reward_models.human_preference.Judge`:
            ``reward_models.SyntheticUser``, or a person through ``preference_ui.SearchJudge``).
        num_comparisons: pairs to judge (the paper: 10).
        num_architectures: evaluated architectures the pairs are drawn among (the paper: 5); evolution
            takes the first ones of its initial population. ``None``: the whole initial population
            (evolution) or 5 (other agents).
        pair_selector: draws the pairs (default: ``reward_models.RandomPairSelector``, Alg. 2).
        make_reward_model: builds an unfitted ranking model from a seed drawn from the agent's
            generator (default: ``RankNetRewardModel(seed=seed)``); it needs ``fit(comparisons,
            context)`` and ``score_many(metrics, context)``.

    Example:
        >>> from agents.personalization import Personalization  # doctest: +SKIP
        >>> from reward_models import SyntheticUser
        >>> user = SyntheticUser("weighted", env.unwrapped.context)  # doctest: +SKIP
        >>> RegularizedEvolution(10, 5, seed=0, personalization=Personalization(user)).search(env, 100)  # doctest: +SKIP
    """

    judge: Judge
    num_comparisons: int = 10
    num_architectures: int | None = 5
    pair_selector: Any | None = None
    make_reward_model: Callable[[int], Any] | None = None

    def __post_init__(self) -> None:
        if self.num_comparisons < 1:
            raise AgentConfigError(f"num_comparisons must be >= 1, got {self.num_comparisons}; the paper judges 10 pairs")
        if self.num_architectures is not None and self.num_architectures < 2:
            raise AgentConfigError(
                f"num_architectures must be >= 2 to form a pair, got {self.num_architectures}; "
                "the paper draws its pairs among 5 (None: the default)"
            )


def metrics_of(evaluations: Sequence[Evaluation]) -> dict[Metric, np.ndarray]:
    """``{Metric: array}`` of the evaluations' metrics, the form ``score_many`` takes."""
    names = {name for ev in evaluations for name in ev.metrics}
    return {
        Metric.parse(name): np.array([ev.metrics.get(name, np.nan) for ev in evaluations], dtype=np.float64)
        for name in sorted(names)
    }


class PersonalizedSearch:
    """Mixin for :class:`~agents.base.SearchAgent` subclasses that accept ``personalization=``.

    The subclass sets ``self.personalization`` and calls :meth:`_learn_metric` (on evaluations it
    has) or :meth:`_warm_start` (evaluate random architectures, then learn) in its ``_search``, and
    compares evaluations with :meth:`search_score`.
    """

    personalization: Personalization | None = None
    learned_metric: Any | None = None
    comparisons: list[Any] | None = None
    _rescored: list[float] | None = None

    def search(
        self,
        env,
        budget: SearchBudget | int | None = 100,
        callback: SearchCallback | Sequence[SearchCallback] | None = None,
    ) -> SearchResult:
        self.learned_metric = None
        self.comparisons = None
        self._rescored = None
        return super().search(env, budget, callback)

    def search_score(self, evaluation: Evaluation) -> float:
        """The evaluation's score under the current search metric (the learned one once there is one)."""
        rescored = self._rescored
        if rescored is not None and evaluation.step <= len(rescored):
            return rescored[evaluation.step - 1]
        return evaluation.reward

    def _warm_start(self) -> list[Evaluation]:
        """Evaluate distinct random architectures, learn the metric from them, return them."""
        n = self.personalization.num_architectures or 5
        seen: set[tuple[int, ...]] = set()
        pool = []
        while len(pool) < n:
            enc = sample_architecture(self.env, self.rng)
            if enc in seen and len(seen) < self.space.size:
                continue
            seen.add(enc)
            pool.append(self.evaluate(enc))
        self._learn_metric(pool)
        return pool

    def _learn_metric(self, evaluations: Sequence[Evaluation]) -> Any:
        """Judge pairs among ``evaluations``, fit the ranking model, make it the env's reward model.

        Raises:
            BudgetExhausted: a search callback stopped the search (nothing is learned).
        """
        if self._stopped:
            raise BudgetExhausted
        p = self.personalization
        pool = list(evaluations[: p.num_architectures] if p.num_architectures else evaluations)
        model, comparisons = fit_learned_metric(p, pool, self.env.unwrapped.context, self.rng)
        self.env.unwrapped.set_reward_model(model)
        self.learned_metric, self.comparisons = model, list(comparisons)
        scores = np.asarray(model.score_many(metrics_of(self.history), self.env.unwrapped.context), dtype=np.float64)
        self._rescored = scores.reshape(-1).tolist()
        logger.debug("learned a metric from %d comparisons among %d architectures", len(comparisons), len(pool))
        return model

    def _result_scores(self) -> list[float] | None:
        if self._rescored is None:
            return None
        return [self.search_score(ev) for ev in self.history]

    def _result_info(self) -> dict[str, Any]:
        info = super()._result_info()
        if self.learned_metric is not None:
            info = {**info, "learned_metric": self.learned_metric, "comparisons": self.comparisons}
        return info


def fit_learned_metric(
    personalization: Personalization, pool: Sequence[Evaluation], context, rng: np.random.Generator
) -> tuple[Any, list[Any]]:
    """Draw pairs among ``pool`` (Alg. 2), have them judged, fit the ranking model (Alg. 3).

    Asks for at most as many pairs as ``pool``'s distinct architectures make (an evolution's random
    initial population may repeat one).
    """
    from reward_models import RandomPairSelector, RankNetRewardModel

    selector = personalization.pair_selector or RandomPairSelector()
    distinct = len({ev.index for ev in pool})
    n = min(personalization.num_comparisons, distinct * (distinct - 1) // 2)
    if n < personalization.num_comparisons:
        logger.info("%d distinct architectures make only %d pairs; judging those", distinct, n)
    pairs = selector.select(pool, n, rng)
    comparisons = list(personalization.judge(pairs, rng=rng))
    seed = int(rng.integers(2**31))
    make = personalization.make_reward_model
    model = make(seed) if make is not None else RankNetRewardModel(seed=seed)
    model.fit(comparisons, context)
    return model, comparisons
