"""The learner on users the metric family cannot explain (issue: interactive personalization).

Measured on the real table: held-out pairwise accuracy over random pairs of the whole space, the
default RankNet (metric-family prior) against the plain network, for out-of-family users; and the
``prior_use="residual"`` option (the network learns only what the prior gets wrong).
"""

from __future__ import annotations

import numpy as np
import pytest

from natsbench_gym.rewards import ScoringContext
from reward_models import RandomPairSelector, RankNetRewardModel
from reward_models.human_preference import make_user


@pytest.fixture(scope="module")
def ctx(topology_bench):
    return ScoringContext.create(topology_bench, "cifar10", 200)


def held_out_accuracy(model, user, ctx, pairs) -> float:
    n = ctx.benchmark.space.size
    s = model.score_many(ctx.query(np.arange(n), model.required_metrics(ctx)), ctx)
    u = user.utilities(np.arange(n))
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    decided = u[a] != u[b]
    return float(np.mean((s[a] > s[b])[decided] == (u[a] > u[b])[decided]))


@pytest.mark.parametrize("name", ["worst_of", "cobb_douglas"])
def test_the_default_learner_ranks_out_of_family_users_better_than_the_plain_network(name, ctx):
    """60 random judgments among 200 architectures, 3000 held-out pairs, 3 seeds: the default (here
    the family's posterior, which explains >= 90 % of these judgments) against ``prior=None``."""
    user = make_user(name, ctx)
    n = ctx.benchmark.space.size
    default, plain = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        judged = user(RandomPairSelector().select(rng.choice(n, 200, replace=False), 60, rng))
        test = RandomPairSelector().select(rng.choice(n, 400, replace=False), 3000, rng)
        default.append(held_out_accuracy(RankNetRewardModel(seed=seed).fit(judged, ctx), user, ctx, test))
        plain.append(held_out_accuracy(RankNetRewardModel(seed=seed, prior=None).fit(judged, ctx), user, ctx, test))
    assert np.mean(default) > np.mean(plain) + 0.005, (default, plain)
    assert np.mean(default) > 0.93


def test_the_residual_prior_use_scores_prior_plus_network_and_survives_a_save(ctx, tmp_path):
    user = make_user("sweet_spot", ctx)  # non-monotone: the family cannot explain it
    rng = np.random.default_rng(0)
    judged = user(RandomPairSelector().select(rng.choice(ctx.benchmark.space.size, 100, replace=False), 40, rng))
    model = RankNetRewardModel(seed=0, prior_tolerance=0.0, prior_use="residual").fit(judged, ctx)
    assert model.mode == "prior+network" and model.prior_scale > 0 and "prior" not in model.input_names
    metrics = ctx.query(np.arange(500), model.required_metrics(ctx))
    prior = model.posterior.mean_utility(model.posterior.normaliser.transform(metrics))
    np.testing.assert_allclose(model.score_many(metrics), model.predict(model.inputs(metrics)).mean(axis=0) + model.prior_scale * prior)
    model.save(tmp_path / "m.pt")
    np.testing.assert_allclose(RankNetRewardModel.load(tmp_path / "m.pt").score_many(metrics), model.score_many(metrics))
    with pytest.raises(ValueError, match="prior_use"):
        RankNetRewardModel(prior_use="offset")
