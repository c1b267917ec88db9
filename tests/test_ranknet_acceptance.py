"""When is the metric-family prior alone the model? ``RankNetConfig(acceptance=...)``: the
90 %-agreement rule, or the prior's cross-validated likelihood against the network's
(docs/personalization.md, "The learner")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.errors import AgentConfigError
from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models import RandomPairSelector, RankNetRewardModel
from reward_models.human_preference import NoiseModel, SyntheticUser, make_user
from reward_models.preferences import PreferenceDataset
from reward_models.ranknet import JudgedPairs, RankNetConfig, RankNetModule, RankNetTrainer, cross_validate


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200, accuracy_metric="test_accuracy")


def judged(ctx, preference, n_pairs, seed=0, noise=None, population=range(400)):
    rng = np.random.default_rng(seed)
    pairs = RandomPairSelector().select(population, n_pairs, rng)
    return PreferenceDataset(SyntheticUser(preference, ctx, noise=noise).judge_many(pairs, rng, selector=pairs.strategy))


def arrays(data):
    cs = data.comparisons
    return (np.array([c.arch_a.index for c in cs]), np.array([c.arch_b.index for c in cs]), np.array([c.outcome.target for c in cs]))


def peak(ctx):
    lat = ctx.stats(Metric.LATENCY)
    return lambda m: -abs(m[Metric.LATENCY] - (lat.min + lat.max) / 2)  # outside the monotone family


def test_settings_are_checked():
    with pytest.raises(UnknownNameError, match="bayes"):
        RankNetConfig(acceptance="bayes")
    with pytest.raises(ValueError, match="cv_folds"):
        RankNetConfig(cv_folds=1)
    assert RankNetConfig().acceptance == "agreement"  # Table I and Figs. 4-5 keep the paper-era rule


def test_a_family_that_orders_every_judgment_is_accepted_without_cross_validation(ctx):
    model = RankNetRewardModel(seed=0, acceptance="likelihood").fit(judged(ctx, "accuracy", 20), ctx)
    assert model.mode == "prior" and model.metadata["prior_agreement"] == 1.0
    assert model.cross_validation is None and "cv_loglik_prior" not in model.metadata


def test_out_of_family_judgments_get_the_network_trained_with_the_folds(ctx):
    data = judged(ctx, peak(ctx), 60)
    model = RankNetRewardModel(seed=0, acceptance="likelihood", ensemble=3, bootstrap=True).fit(data, ctx)
    cv = model.cross_validation
    assert cv is not None and cv.folds == 5 and cv.network - cv.prior > cv.standard_error > 0 and not cv.prefers_prior
    assert model.mode == "prior+network" and model.module is cv.module and model.module.members == 3
    assert model.metadata["cv_loglik_network"] == cv.network and model.training.epochs > 0
    # the same judgments and seed give the same model, score for score
    again = RankNetRewardModel(seed=0, acceptance="likelihood", ensemble=3, bootstrap=True).fit(data, ctx)
    x = ctx.query(np.arange(300), model.required_metrics(ctx))
    np.testing.assert_array_equal(model.score_many(x, ctx), again.score_many(x, ctx))


def test_a_held_out_judgment_is_predicted_without_its_own_answer(ctx):
    """Reversing one answer changes every model except those that predict it (its fold's)."""
    data = judged(ctx, peak(ctx), 30)
    a, b, y = arrays(data)
    cfg = RankNetConfig(seed=1)
    before = cross_validate(JudgedPairs.build(a, b, y, ctx, cfg), ctx, cfg)
    for i in (0, 17):
        flipped = y.copy()
        flipped[i] = 1.0 - flipped[i]
        after = cross_validate(JudgedPairs.build(a, b, flipped, ctx, cfg), ctx, cfg)
        assert after.prior_probability[i] == pytest.approx(before.prior_probability[i], abs=1e-12)
        assert after.network_probability[i] == pytest.approx(before.network_probability[i], abs=1e-9)
        others = np.arange(y.size) != i
        assert not np.allclose(after.network_probability[others], before.network_probability[others])


def test_a_member_with_zero_weight_on_a_pair_never_sees_it():
    rng = np.random.default_rng(0)
    x = rng.random((12, 3))
    a, b = np.arange(20) % 12, (np.arange(20) + 5) % 12
    y = (rng.random(20) < 0.5).astype(np.float64)
    weights = np.ones((2, 20))
    weights[0, 4] = 0.0
    scores = []
    for target in (0.0, 1.0):
        y[4] = target
        module = RankNetModule(3, 4, 2, True, torch.Generator().manual_seed(0))
        RankNetTrainer(max_epochs=30).train(module, x, a, b, y, seed=0, weights=weights)
        scores.append(module(torch.from_numpy(x)).detach().numpy())
    np.testing.assert_allclose(scores[0][0], scores[1][0])  # member 0 never saw pair 4
    assert not np.allclose(scores[0][1], scores[1][1])  # member 1 did


def test_personalization_model_options_reach_the_default_model():
    from agents.personalization import INTERACTIVE_TARGET_PRIOR, Personalization

    user = object()
    model = Personalization(user, 20, model_options={"acceptance": "likelihood"}).new_model(3)
    assert model.config.acceptance == "likelihood" and model.config.ensemble == 5 and model.config.target_prior == INTERACTIVE_TARGET_PRIOR
    assert Personalization(user, 20, model_options={"target_prior": 0.0}).target_prior == 0.0
    with pytest.raises(AgentConfigError, match="make_reward_model"):
        Personalization(user, 20, make_reward_model=lambda s: None, model_options={"acceptance": "likelihood"})
    with pytest.raises(AgentConfigError, match="model_options"):
        Personalization(user, 20, model_options=["acceptance"])
    with pytest.raises(AgentConfigError, match="acceptance"):
        Personalization(user, 20, model_options={"acceptance": "bayes"}).new_model(0)


@pytest.fixture(scope="module")
def real_ctx(topology_bench):
    return ScoringContext.create(topology_bench, "cifar10", 200)


def test_a_careless_judge_inside_the_family_keeps_the_prior(real_ctx):
    """CIFAR-10, a user who wants accuracy and reverses 15 % of the answers, 20 random judgments
    among 100 architectures, 3,000 random held-out pairs, 4 seeds, the loop's model: the agreement
    rule trains the network in 2 of 4 runs, the likelihood rule keeps the prior in 3 of 4; held-out
    pairwise accuracy .847 against .932 (measured)."""
    ctx = real_ctx
    n = ctx.benchmark.space.size
    user = make_user("accuracy", ctx, noise=NoiseModel(flip_probability=0.15))
    truth = make_user("accuracy", ctx).utilities(np.arange(n))
    acc = {"agreement": [], "likelihood": []}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        data = list(user(RandomPairSelector().select(rng.choice(n, 100, replace=False), 20, rng), rng=rng))
        held = rng.integers(0, n, (3000, 2))
        for rule in acc:
            model = RankNetRewardModel(seed=seed, acceptance=rule, ensemble=5, bootstrap=True, target_prior=0.25).fit(data, ctx)
            s = model.score_many(ctx.query(np.arange(n), model.required_metrics(ctx)), ctx)
            ha, hb = held[:, 0], held[:, 1]
            d = truth[ha] != truth[hb]
            acc[rule].append(float(np.mean((s[ha] > s[hb])[d] == (truth[ha] > truth[hb])[d])))
    assert np.mean(acc["likelihood"]) > np.mean(acc["agreement"]) + 0.05


def test_search_cli_acceptance_option(tmp_path, real_data):
    from natsbench_gym_cli.search import build_parser, main

    assert build_parser().parse_args([]).acceptance is None
    rc = main(["--preference", "weighted", "--acceptance", "likelihood", "--comparisons", "6", "--evaluations", "30",
               "--data", str(real_data), "--out", str(tmp_path / "out")])
    assert rc == 0
    assert RankNetRewardModel.load(tmp_path / "out" / "reward_model.pt").config.acceptance == "likelihood"
