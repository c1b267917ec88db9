"""reward_models.selection: random pairs (Alg. 2) and active selection (uncertainty, disagreement)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models import fixed
from reward_models.bradley_terry import preference_probability
from reward_models.errors import PairSelectionError
from reward_models.preferences import pair_key
from reward_models.selection import ActivePairSelector, PairBatch, RandomPairSelector, make_selector


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200, accuracy_metric="test_accuracy")


def keys(batch) -> list[tuple[int, int]]:
    return [pair_key(a, b) for a, b in batch]


# --- random -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 10, 30, 45])  # small n: Alg. 2's rejection; large n: enumeration
def test_random_pairs_are_unique_unordered_and_never_self_pairs(n):
    batch = RandomPairSelector().select(range(10, 20), n, np.random.default_rng(0))
    assert isinstance(batch, PairBatch) and batch.strategy == "random" and len(batch) == n
    assert len(set(keys(batch))) == n
    assert all(a != b and 10 <= a < 20 and 10 <= b < 20 for a, b in batch)


def test_random_pairs_respect_exclusions_in_either_order():
    exclude = {(1, 0), (2, 3)}
    batch = RandomPairSelector().select(range(4), 4, np.random.default_rng(1), exclude=exclude)
    assert set(keys(batch)) == {(0, 2), (0, 3), (1, 2), (1, 3)}


def test_random_pairs_are_reproducible_and_seed_dependent():
    pick = lambda seed: RandomPairSelector().select(range(100), 20, np.random.default_rng(seed)).pairs  # noqa: E731
    assert pick(3) == pick(3)
    assert pick(3) != pick(4)


def test_random_pair_orientation_is_random():
    batch = RandomPairSelector().select(range(2, 40), 200, np.random.default_rng(0))
    assert 0.3 < np.mean([a < b for a, b in batch]) < 0.7


def test_selectors_accept_evaluations_with_an_index():
    class Evaluation:
        def __init__(self, index):
            self.index = index

    batch = RandomPairSelector().select([Evaluation(i) for i in (7, 8, 9)], 3, np.random.default_rng(0))
    assert set(keys(batch)) == {(7, 8), (7, 9), (8, 9)}


def test_selection_errors_say_what_is_possible():
    rng = np.random.default_rng(0)
    with pytest.raises(PairSelectionError, match="cannot propose 4 new pairs: a population of 3 architectures has 3 pairs and 0 are already judged"):
        RandomPairSelector().select([0, 1, 2], 4, rng)
    with pytest.raises(PairSelectionError, match="1 are already judged"):
        RandomPairSelector().select([0, 1, 2, 2], 3, rng, exclude={(0, 1)})
    with pytest.raises(PairSelectionError, match="int >= 0"):
        RandomPairSelector().select([0, 1, 2], -1, rng)
    with pytest.raises(TypeError, match="numpy Generator"):
        RandomPairSelector().select([0, 1, 2], 1, 0)
    assert len(RandomPairSelector().select([0, 1], 0, rng)) == 0


def test_make_selector_names():
    assert isinstance(make_selector("random"), RandomPairSelector)
    assert make_selector("active").name == "active:disagreement"
    assert make_selector("active:uncertainty").name == "active:uncertainty"
    assert make_selector("active:disagreement").name == "active:disagreement"
    with pytest.raises(UnknownNameError, match="unknown pair selector 'actve'; did you mean 'active'"):
        make_selector("actve")
    with pytest.raises(PairSelectionError, match="unknown active criterion"):
        ActivePairSelector("entropy")
    with pytest.raises(PairSelectionError, match="focus must be in"):
        ActivePairSelector(focus=0.0)


# --- active -----------------------------------------------------------------------------------------
def test_active_selection_falls_back_to_random_without_a_fitted_model(ctx):
    class Unfitted:
        is_fitted = False

        def score_many(self, metrics, context):
            raise AssertionError("an unfitted model must not be asked")

    for model in (None, Unfitted()):
        batch = ActivePairSelector().select(range(20), 5, np.random.default_rng(0), model=model, context=ctx)
        assert batch.strategy == "random" and len(set(keys(batch))) == 5


def test_uncertainty_picks_the_pairs_closest_to_a_coin_flip(ctx):
    model = fixed.h_accuracy()
    population = np.arange(40)
    scores = model.score_many(ctx.query(population, [Metric.TEST_ACCURACY]), ctx)
    gaps = {pair_key(int(population[i]), int(population[j])): abs(scores[i] - scores[j]) for i, j in itertools.combinations(range(40), 2)}
    expected = sorted(gaps, key=gaps.get)[:5]
    selector = ActivePairSelector("uncertainty", focus=1.0, diversity=False)
    batch = selector.select(population, 5, np.random.default_rng(0), model=model, context=ctx)
    assert batch.strategy == "active:uncertainty"
    assert set(keys(batch)) == set(expected)


def test_uncertain_pairs_are_more_uncertain_than_random_ones(ctx):
    model = fixed.h_weighted()
    population = np.arange(200)
    rng = np.random.default_rng(0)

    def mean_certainty(batch):
        a, b = np.array(batch.pairs).T
        sa = model.score_many(ctx.query(a, model.required_metrics(ctx)), ctx)
        sb = model.score_many(ctx.query(b, model.required_metrics(ctx)), ctx)
        return np.mean(np.abs(preference_probability(sa, sb) - 0.5))

    active = ActivePairSelector().select(population, 20, rng, model=model, context=ctx)
    random = RandomPairSelector().select(population, 20, rng)
    assert mean_certainty(active) < 0.2 * mean_certainty(random)


def test_focus_draws_pairs_among_the_best_architectures(ctx):
    model = fixed.h_accuracy()
    population = np.arange(100)
    scores = model.score_many(ctx.query(population, [Metric.TEST_ACCURACY]), ctx)
    top = set(population[np.argsort(-scores)[:25]].tolist())
    batch = ActivePairSelector(focus=0.25).select(population, 10, np.random.default_rng(0), model=model, context=ctx)
    assert all(a in top and b in top for a, b in batch)


def test_diversity_uses_each_architecture_once_per_batch_while_possible(ctx):
    model = fixed.h_accuracy()
    batch = ActivePairSelector(focus=1.0).select(range(30), 15, np.random.default_rng(0), model=model, context=ctx)
    used = [i for pair in batch for i in pair]
    assert len(used) == len(set(used)) == 30
    batch = ActivePairSelector(focus=1.0).select(range(30), 20, np.random.default_rng(0), model=model, context=ctx)
    assert len(set(keys(batch))) == 20  # more pairs than disjoint ones: the rule relaxes


def test_active_selection_skips_judged_pairs(ctx):
    model = fixed.h_accuracy()
    rng = np.random.default_rng(0)
    first = ActivePairSelector(diversity=False).select(range(30), 5, rng, model=model, context=ctx)
    second = ActivePairSelector(diversity=False).select(range(30), 5, rng, exclude=set(first.pairs), model=model, context=ctx)
    assert not set(keys(first)) & set(keys(second))


class TwoMembers:
    """An 'ensemble' whose two members agree everywhere except on architectures 3 and 4."""

    def required_metrics(self, context):
        return (Metric.TEST_ACCURACY,)

    def member_scores(self, metrics, context):
        n = len(metrics[Metric.TEST_ACCURACY])
        first = np.arange(n, dtype=float)
        second = first.copy()
        second[[3, 4]] = second[[4, 3]] + np.array([10.0, -10.0])
        return np.stack([first, second])

    def score_many(self, metrics, context):
        return self.member_scores(metrics, context).mean(axis=0)


def test_disagreement_picks_the_pairs_ensemble_members_dispute(ctx):
    batch = ActivePairSelector("disagreement", focus=1.0, diversity=False).select(range(10), 1, np.random.default_rng(0), model=TwoMembers(), context=ctx)
    assert batch.strategy == "active:disagreement"
    assert 3 in batch[0] or 4 in batch[0]


def test_seeded_active_selection_is_reproducible(ctx):
    model = fixed.h_weighted()
    pick = lambda: ActivePairSelector().select(range(60), 8, np.random.default_rng(5), model=model, context=ctx).pairs  # noqa: E731
    assert pick() == pick()


def test_candidate_subsampling_still_yields_enough_pairs(ctx):
    selector = ActivePairSelector(focus=1.0, max_candidates=3)
    batch = selector.select(range(40), 12, np.random.default_rng(0), model=fixed.h_accuracy(), context=ctx)
    assert len(set(keys(batch))) == 12


def test_disagreement_without_members_says_it_used_uncertainty(ctx):
    batch = ActivePairSelector("disagreement").select(range(10), 2, np.random.default_rng(0), model=fixed.h_accuracy(), context=ctx)
    assert batch.strategy == "active:uncertainty"
