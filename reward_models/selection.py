"""Which pairs to show a judge: the paper's *Evaluation Generator*, behind one interface.

A :class:`PairSelector` proposes ``n`` new pairs from a population of architectures (official
indices), never a pair already judged (``exclude``) and never an architecture against itself:

* :class:`RandomPairSelector` -- the paper's Alg. 2: unique unordered pairs drawn uniformly.
* :class:`EUBOPairSelector` -- pairs that decide the recommendation: the largest expected utility
  of the better of the two (EUBO, as BoTorch's ``AnalyticExpectedUtilityOfBestOption``) under the
  model's posterior draws, each draw's utility taken as its rank among the candidates; used by the
  interactive personalization loop on the search's current best candidates.
* :class:`ActivePairSelector` -- the paper's outlook: pairs the current preference model is least
  sure about. ``criterion="uncertainty"`` takes the pairs whose predicted ``P(a preferred)`` is
  closest to 0.5; ``criterion="disagreement"`` those on which the members of an ensemble disagree
  most (variance of their ``P``). Because NAS wants the *best* architectures, not a full ranking,
  candidates are drawn from the top ``focus`` fraction of the population by current score. Without a
  fitted model it falls back to random pairs.

Every selector takes an explicit ``np.random.Generator``; the same generator state gives the same
pairs. Each call returns a :class:`PairBatch`, which also says which strategy produced it (to record
in :attr:`~reward_models.preferences.Comparison.selector`).

Example:
    >>> import numpy as np
    >>> from reward_models.selection import RandomPairSelector
    >>> batch = RandomPairSelector().select(range(10), 3, np.random.default_rng(0))
    >>> len(batch), batch.strategy
    (3, 'random')
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import ScoringContext, as_reward_model
from reward_models.bradley_terry import preference_probability
from reward_models.errors import PairSelectionError
from reward_models.preferences import pair_key

__all__ = [
    "PairBatch",
    "PairSelector",
    "RandomPairSelector",
    "ActivePairSelector",
    "EUBOPairSelector",
    "Confidence",
    "recommendation_confidence",
    "pick_pairs",
    "make_selector",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairBatch:
    """Pairs ``(index a, index b)`` proposed for judgment, and the strategy that chose them.

    ``round`` and ``rounds``: the personalized search's round the pairs belong to and how many its
    schedule has (set by :mod:`agents.personalization`, so that an interface asking one pair at a
    time still says which round of the search it is in); ``None`` elsewhere.
    """

    pairs: tuple[tuple[int, int], ...]
    strategy: str
    round: int | None = None
    rounds: int | None = None

    def __post_init__(self) -> None:
        for a, b in self.pairs:
            if a == b:
                raise PairSelectionError(f"a pair needs two different architectures, got ({a}, {b})")

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return self.pairs[i]


class PairSelector(ABC):
    """Chooses pairs of architectures to compare.

    :meth:`select` checks its arguments and calls the protected hook :meth:`_select`.
    """

    name: str = "selector"

    def select(
        self,
        population: Iterable[int] | np.ndarray,
        n: int,
        rng: np.random.Generator,
        *,
        exclude: Collection[tuple[int, int]] = (),
        model: Any = None,
        context: ScoringContext | None = None,
    ) -> PairBatch:
        """Propose ``n`` new pairs from ``population``.

        Args:
            population: official indices of the architectures to pair, or objects with an
                ``index`` attribute (an agent's evaluations); duplicates are ignored.
            n: number of pairs.
            rng: the source of every random choice.
            exclude: pairs already judged, either order (e.g. ``dataset.judged_pairs()``).
            model: the current preference model (used by active selectors; ignored otherwise).
            context: where the model's metrics come from (needed with ``model``).

        Raises:
            PairSelectionError: ``n`` is negative or larger than the number of unjudged pairs.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
        pop = np.unique(np.fromiter((int(getattr(i, "index", i)) for i in population), dtype=np.int64))
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise PairSelectionError(f"the number of pairs must be an int >= 0, got {n!r}")
        n = int(n)
        members = set(pop.tolist())
        excluded = {pair_key(int(a), int(b)) for a, b in exclude if a in members and b in members and a != b}
        available = len(pop) * (len(pop) - 1) // 2 - len(excluded)
        if n > available:
            raise PairSelectionError(
                f"cannot propose {n} new pairs: a population of {len(pop)} architectures has "
                f"{len(pop) * (len(pop) - 1) // 2} pairs and {len(excluded)} are already judged"
            )
        if n == 0:
            return PairBatch((), self.name)
        return self._select(pop, n, rng, excluded, model, context)

    @abstractmethod
    def _select(
        self,
        population: np.ndarray,
        n: int,
        rng: np.random.Generator,
        excluded: set[tuple[int, int]],
        model: Any,
        context: ScoringContext | None,
    ) -> PairBatch:
        """Return ``n`` pairs of distinct members of ``population`` not in ``excluded`` (checked args)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _oriented(a: int, b: int, rng: np.random.Generator) -> tuple[int, int]:
    """Show the two architectures in random order, so "a" carries no meaning."""
    return (a, b) if rng.random() < 0.5 else (b, a)


def pick_pairs(
    ranking: np.ndarray, a: np.ndarray, b: np.ndarray, n: int, rng: np.random.Generator, diversity: bool = True
) -> list[tuple[int, int]]:
    """The first ``n`` candidate pairs ``(a[c], b[c])`` in ``ranking`` order, each shown in random
    order; with ``diversity`` each architecture is used at most once while possible (one model would
    otherwise ask about one borderline architecture ``n`` times), then the rest in order."""
    chosen: list[tuple[int, int]] = []
    used_archs: set[int] = set()
    used: set[int] = set()
    for strict in ((True, False) if diversity else (False,)):
        for c in ranking:
            if len(chosen) == n:
                break
            x, y = int(a[c]), int(b[c])
            if c in used or (strict and (x in used_archs or y in used_archs)):
                continue
            used.add(int(c))
            used_archs.update((x, y))
            chosen.append(_oriented(x, y, rng))
    return chosen


class RandomPairSelector(PairSelector):
    """Unique random pairs, as the paper's Alg. 2: draw two different architectures, keep new pairs."""

    name = "random"

    def _select(self, population, n, rng, excluded, model, context):
        p = len(population)
        total = p * (p - 1) // 2
        chosen: list[tuple[int, int]] = []
        taken = set(excluded)
        if n + len(excluded) <= total // 4:
            # Alg. 2 literally: rejection of repeats is cheap while few pairs are taken.
            while len(chosen) < n:
                i, j = rng.choice(p, size=2, replace=False)
                a, b = int(population[i]), int(population[j])
                if pair_key(a, b) not in taken:
                    taken.add(pair_key(a, b))
                    chosen.append((a, b))
        else:
            ii, jj = np.triu_indices(p, k=1)
            keys = [pair_key(int(population[i]), int(population[j])) for i, j in zip(ii, jj, strict=True)]
            free = np.array([k not in taken for k in keys])
            pick = rng.choice(np.flatnonzero(free), size=n, replace=False)
            chosen = [_oriented(*keys[k], rng) for k in pick]
        return PairBatch(tuple(chosen), self.name)


class ActivePairSelector(PairSelector):
    """Pairs the current preference model is least sure about (active learning).

    Args:
        criterion: ``"uncertainty"`` (predicted ``P(a preferred)`` closest to 0.5, from the mean
            score) or ``"disagreement"`` (largest variance of ``P`` across ensemble members; a model
            with one member falls back to uncertainty, and the batch's strategy says so).
        focus: fraction of the population, best first by the model's mean score, that candidate pairs
            are drawn from (1.0: all). NAS needs the top of the ranking right, so by default the
            judge is asked about the better half.
        diversity: within one batch, use each architecture at most once while possible (one model
            would otherwise ask about one borderline architecture ``n`` times).
        max_candidates: at most this many candidate pairs are scored (a random subset beyond it).

    The model is duck-typed: anything with ``score_many(metrics, context)``; a
    ``member_scores(metrics, context) -> (members, n)`` method (RankNet's) enables disagreement, a
    ``required_metrics(context)`` method says what to query, and ``is_fitted = False`` makes the
    selector fall back to random pairs.
    """

    def __init__(
        self,
        criterion: str = "disagreement",
        focus: float = 0.5,
        diversity: bool = True,
        max_candidates: int = 20_000,
        fallback: PairSelector | None = None,
    ) -> None:
        if criterion not in ("uncertainty", "disagreement"):
            raise PairSelectionError(f"unknown active criterion {criterion!r}; expected 'uncertainty' or 'disagreement'")
        if not 0 < focus <= 1:
            raise PairSelectionError(f"focus must be in (0, 1], got {focus!r}")
        if max_candidates < 1:
            raise PairSelectionError(f"max_candidates must be >= 1, got {max_candidates!r}")
        self.criterion = criterion
        self.focus = float(focus)
        self.diversity = bool(diversity)
        self.max_candidates = int(max_candidates)
        self.fallback = fallback or RandomPairSelector()

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"active:{self.criterion}"

    def _select(self, population, n, rng, excluded, model, context):
        if model is None or not getattr(model, "is_fitted", True) or context is None:
            logger.debug("%s: no fitted model yet, proposing random pairs", self.name)
            return self.fallback._select(population, n, rng, excluded, None, None)
        scores = _member_scores(model, population, context)  # (members, p)
        mean = scores.mean(axis=0)
        order = np.argsort(-mean, kind="stable")
        # Grow the focus set until it holds enough unjudged pairs.
        k = max(2, math.ceil(self.focus * len(population)))
        while True:
            cand_i, cand_j = self._candidates(order[:k], population, excluded, rng, n)
            if len(cand_i) >= n or k >= len(population):
                break
            k = min(len(population), 2 * k)
        p = preference_probability(scores[:, cand_i], scores[:, cand_j])  # (members, candidates)
        criterion = self.criterion if scores.shape[0] > 1 else "uncertainty"
        if criterion == "disagreement":
            informativeness = p.var(axis=0)
        else:
            informativeness = -np.abs(p.mean(axis=0) - 0.5)
        # Random tie-break, so equal candidates are not chosen by position.
        ranking = np.lexsort((rng.random(len(informativeness)), -informativeness))
        chosen = pick_pairs(ranking, population[cand_i], population[cand_j], n, rng, self.diversity)
        return PairBatch(tuple(chosen), f"active:{criterion}")

    def _candidates(self, positions, population, excluded, rng, n) -> tuple[np.ndarray, np.ndarray]:
        """Position pairs (into ``population``) among ``positions`` that are not yet judged (at least ``n`` kept)."""
        ii, jj = np.triu_indices(len(positions), k=1)
        ci, cj = positions[ii], positions[jj]
        if excluded:
            keys = zip(population[ci].tolist(), population[cj].tolist(), strict=True)
            keep = np.fromiter((pair_key(a, b) not in excluded for a, b in keys), dtype=bool, count=len(ci))
            ci, cj = ci[keep], cj[keep]
        limit = max(self.max_candidates, n)
        if len(ci) > limit:
            pick = np.sort(rng.choice(len(ci), size=limit, replace=False))
            ci, cj = ci[pick], cj[pick]
        return ci, cj

    def __repr__(self) -> str:
        return f"ActivePairSelector(criterion={self.criterion!r}, focus={self.focus}, diversity={self.diversity})"


def _member_scores(model: Any, population: np.ndarray, context: ScoringContext) -> np.ndarray:
    """``(members, p)`` scores of ``population`` (official indices): the model's members or its mean score."""
    model = as_reward_model(model)
    metrics = context.query(population, model.required_metrics(context))
    if hasattr(model, "member_scores"):
        scores = np.asarray(model.member_scores(metrics, context), dtype=np.float64)
    else:
        scores = np.asarray(model.score_many(metrics, context), dtype=np.float64)[None, :]
    return np.atleast_2d(scores)


def _rank_utilities(scores: np.ndarray) -> np.ndarray:
    """Each row's scores as mid-rank quantiles in [0, 1] (ties share a rank): scale-free utilities."""
    from scipy.stats import rankdata

    p = scores.shape[1]
    if p < 2:
        return np.ones_like(scores)
    return (rankdata(scores, axis=1) - 1.0) / (p - 1.0)


class EUBOPairSelector(PairSelector):
    """Pairs that decide the recommendation: expected utility of the best option (EUBO).

    For a candidate pair ``(a, b)``, EUBO is ``E[max(u(a), u(b))]`` over the model's posterior: the
    value of the better of the two if the judge then picks it (Lin et al. 2022; BoTorch's
    ``AnalyticExpectedUtilityOfBestOption``). With a finite set of candidates and posterior *draws*
    (the metric-family posterior's hypotheses, or an ensemble's members) the expectation is the mean
    over draws. Each draw's utility is its rank among the candidates (0 worst, 1 best), so draws of
    different families (a weighted sum, a constraint) weigh alike. A pair of two architectures that
    every draw ranks the same scores no higher than the best one alone; a pair of two that different
    draws put on top scores highest, and judging it tells which reading is right where it matters.

    Within a batch each architecture is used at most once while possible (``diversity``). With a
    model of one member (no draws) the pair of the two best by score is taken, then the next two.
    Without a model (or an unfitted one), ``fallback`` (random pairs) chooses.

    Args:
        diversity: use each architecture at most once per batch while possible.
        fallback: the selector used without a fitted model (default: random pairs).
    """

    name = "eubo"

    def __init__(self, diversity: bool = True, fallback: PairSelector | None = None) -> None:
        self.diversity = bool(diversity)
        self.fallback = fallback or RandomPairSelector()

    def _select(self, population, n, rng, excluded, model, context):
        if model is None or not getattr(model, "is_fitted", True) or context is None:
            logger.debug("eubo: no fitted model yet, proposing random pairs")
            return self.fallback._select(population, n, rng, excluded, None, None)
        utilities = _rank_utilities(_member_scores(model, population, context))  # (draws, p)
        ii, jj = np.triu_indices(len(population), k=1)
        if excluded:
            keys = zip(population[ii].tolist(), population[jj].tolist(), strict=True)
            keep = np.fromiter((pair_key(a, b) not in excluded for a, b in keys), dtype=bool, count=len(ii))
            ii, jj = ii[keep], jj[keep]
        value = np.maximum(utilities[:, ii], utilities[:, jj]).mean(axis=0)
        ranking = np.lexsort((rng.random(len(value)), -value))
        return PairBatch(tuple(pick_pairs(ranking, population[ii], population[jj], n, rng, self.diversity)), self.name)

    def __repr__(self) -> str:
        return f"EUBOPairSelector(diversity={self.diversity})"


@dataclass(frozen=True)
class Confidence:
    """How sure a preference model is of its recommendation among some candidates.

    Attributes:
        best: official index of the candidate the model scores highest.
        runner_up: the second highest (``-1`` with a single candidate).
        probability: the model's probability that ``best`` is preferred to ``runner_up``: the share
            of its posterior draws (or members) that rank ``best`` above it (ties count half); with
            one member, its Bradley-Terry probability. 1.0 with a single candidate.
    """

    best: int
    runner_up: int
    probability: float

    def __str__(self) -> str:
        if self.runner_up < 0:
            return f"#{self.best} is the only candidate"
        return f"#{self.best} beats the runner-up #{self.runner_up} with probability {self.probability:.2f}"


def recommendation_confidence(
    model: Any, candidates: Iterable[int] | np.ndarray, context: ScoringContext, ranked: bool = False
) -> Confidence:
    """The model's confidence that its best candidate beats the runner-up (see :class:`Confidence`).

    Args:
        model: a fitted preference model (``score_many``; ``member_scores`` for posterior draws).
        candidates: official indices (or objects with ``index``), e.g. an agent's evaluations.
        context: where the candidates' metrics come from.
        ranked: the candidates are in the order recommended (the first is the recommendation, the
            second the runner-up), instead of the model's mean-score order.
    """
    indices = list(dict.fromkeys(int(getattr(i, "index", i)) for i in candidates))
    pop = np.asarray(indices if ranked else sorted(indices), dtype=np.int64)
    if pop.size == 0:
        raise PairSelectionError("recommendation_confidence needs at least one candidate")
    scores = _member_scores(model, pop, context)
    mean = scores.mean(axis=0)
    order = np.arange(pop.size) if ranked else np.argsort(-mean, kind="stable")
    if pop.size == 1:
        return Confidence(int(pop[0]), -1, 1.0)
    i, j = int(order[0]), int(order[1])
    if scores.shape[0] > 1:
        d = scores[:, i] - scores[:, j]
        probability = float(np.mean(d > 0) + 0.5 * np.mean(d == 0))
    else:
        probability = float(preference_probability(scores[0, i], scores[0, j]))
    return Confidence(int(pop[i]), int(pop[j]), probability)


def make_selector(name: str | PairSelector) -> PairSelector:
    """``"random"``, ``"eubo"``, ``"active"`` (= ``"active:disagreement"``), ``"active:uncertainty"`` or ``"active:disagreement"``.

    Disagreement needs a model with several members (a RankNet ensemble, or the posterior draws of
    a RankNet in its metric-family prior mode) and falls back to uncertainty otherwise.
    """
    if isinstance(name, PairSelector):
        return name
    key = str(name).lower()
    if key == "random":
        return RandomPairSelector()
    if key == "eubo":
        return EUBOPairSelector()
    if key in ("active:uncertainty", "uncertainty"):
        return ActivePairSelector("uncertainty")
    if key in ("active", "active:disagreement", "disagreement"):
        return ActivePairSelector("disagreement")
    raise UnknownNameError("pair selector", name, ["random", "eubo", "active", "active:uncertainty", "active:disagreement"])
