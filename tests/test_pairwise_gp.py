"""BoTorch's PairwiseGP and EUBO behind the project's reward-model and pair-selector interfaces (the
peer of docs/personalization.md)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("botorch", reason='the BoTorch peer needs pip install "natsbench-gym[botorch]"')

from natsbench_gym.rewards import ScoringContext  # noqa: E402
from reward_models import RandomPairSelector, SyntheticUser  # noqa: E402
from reward_models.pairwise_gp import BoTorchEUBOSelector, PairwiseGPRewardModel  # noqa: E402


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200)


def test_the_gp_learns_a_users_order_and_gives_posterior_draws(ctx):
    user = SyntheticUser("accuracy", ctx)
    rng = np.random.default_rng(0)
    pool = rng.choice(ctx.benchmark.space.size, 60, replace=False)
    model = PairwiseGPRewardModel(seed=0).fit(user(RandomPairSelector().select(pool, 40, rng)), ctx)
    test = rng.choice(ctx.benchmark.space.size, 200, replace=False)
    metrics = ctx.query(test, model.required_metrics(ctx))
    truth = user.utilities(test)
    score = model.score_many(metrics, ctx)
    agreement = np.mean(np.sign(score[:, None] - score[None, :]) == np.sign(truth[:, None] - truth[None, :]))
    assert agreement > 0.8
    draws = model.member_scores(metrics, ctx)
    assert draws.shape == (64, 200) and np.all(draws.std(axis=0) > 0)
    np.testing.assert_array_equal(draws, model.member_scores(metrics, ctx))  # seeded


def test_botorch_eubo_pairs_unjudged_candidates_and_falls_back_to_random(ctx):
    user = SyntheticUser("accuracy", ctx)
    rng = np.random.default_rng(1)
    pool = rng.choice(ctx.benchmark.space.size, 12, replace=False)
    judged = user(RandomPairSelector().select(pool, 6, rng))
    model = PairwiseGPRewardModel(seed=0).fit(judged, ctx)
    batch = BoTorchEUBOSelector().select(pool, 3, rng, exclude=[c.indices for c in judged], model=model, context=ctx)
    assert batch.strategy == "botorch-eubo" and len(batch) == 3
    assert not {frozenset(p) for p in batch} & {frozenset(c.indices) for c in judged}
    assert BoTorchEUBOSelector().select(pool, 2, rng).strategy == "random"
