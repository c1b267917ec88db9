"""reward_models.posterior: the metric-family posterior, alone and as RankNet's prior."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models import fixed
from reward_models.errors import NotFittedError
from reward_models.evaluation import top_k_precision
from reward_models.human_preference import NoiseModel, SyntheticUser
from reward_models.posterior import MetricFamilyConfig, MetricFamilyPosterior
from reward_models.preferences import PreferenceDataset
from reward_models.selection import ActivePairSelector, RandomPairSelector


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200, accuracy_metric="test_accuracy")


def judged(ctx, preference, n_pairs, population=range(400), seed=0, noise=None):
    rng = np.random.default_rng(seed)
    pairs = RandomPairSelector().select(population, n_pairs, rng)
    return PreferenceDataset(SyntheticUser(preference, ctx, noise=noise).judge_many(pairs, rng, selector=pairs.strategy))


def test_recognises_a_selective_user(ctx):
    post = MetricFamilyPosterior().fit(judged(ctx, "latency", 12), ctx)
    assert post.family_posterior()["selective"] > 0.5
    assert post.top_hypotheses(1)[0][1] == "selective: latency"
    test = np.arange(1000, 1200)
    truth = SyntheticUser("latency", ctx).utilities(test)
    assert top_k_precision(post.score_many(ctx.query(test, post.required_metrics(ctx)), ctx), truth, 10) == 1.0


def test_locates_a_constraint_threshold(ctx):
    """A FLOPs constraint at the space median: the constraint family wins, thresholds near 0.5."""
    post = MetricFamilyPosterior().fit(judged(ctx, "flop_constraint", 60), ctx)
    assert post.family_posterior()["constraint"] > 0.9
    for _, text in post.top_hypotheses(3):
        assert text.startswith("constraint: test_accuracy where flops rank >=")
        assert abs(float(text.rsplit(" ", 1)[1]) - 0.5) <= 0.1


def test_learns_a_weighted_user_and_is_order_invariant(ctx):
    user = fixed.weighted_sum({"accuracy": 1.0, "latency": 3.0, "flops": 1.0}, name="mostly_latency")
    data = judged(ctx, user, 40)
    post = MetricFamilyPosterior().fit(data, ctx)
    test = np.arange(1000, 1400)
    metrics = ctx.query(test, post.required_metrics(ctx))
    truth = user.score_many(ctx.query(test), ctx)
    assert top_k_precision(post.score_many(metrics, ctx), truth, 20) >= 0.7
    shuffled = PreferenceDataset([data.comparisons[i] for i in np.random.default_rng(1).permutation(len(data))])
    np.testing.assert_allclose(MetricFamilyPosterior().fit(shuffled, ctx).score_many(metrics, ctx), post.score_many(metrics, ctx))


def test_a_flipped_answer_does_not_rule_out_the_truth(ctx):
    """With the lapse, one careless click lowers the true metric's posterior but does not zero it."""
    data = judged(ctx, "latency", 12)
    flipped = PreferenceDataset([c if i else dataclasses.replace(c, outcome=c.outcome.flipped()) for i, c in enumerate(data.comparisons)])
    strict = MetricFamilyPosterior(lapse=0.0).fit(flipped, ctx)
    robust = MetricFamilyPosterior().fit(flipped, ctx)
    assert robust.top_hypotheses(1)[0][1] == "selective: latency"
    assert robust.top_hypotheses(1)[0][0] > strict.posterior[1]  # index 1 = selective latency


def test_member_scores_are_posterior_draws_for_active_selection(ctx):
    post = MetricFamilyPosterior(posterior_samples=16).fit(judged(ctx, "weighted", 6), ctx)
    metrics = ctx.query(np.arange(30), post.required_metrics(ctx))
    members = post.member_scores(metrics, ctx)
    assert members.shape == (16, 30)
    np.testing.assert_array_equal(members, post.member_scores(metrics, ctx))  # seeded
    batch = ActivePairSelector("disagreement").select(np.arange(100), 3, np.random.default_rng(0), model=post, context=ctx)
    assert batch.strategy == "active:disagreement" and len(batch) == 3


def test_credible_mass_one_is_the_full_posterior_mean(ctx):
    data = judged(ctx, "accuracy", 8)
    post = MetricFamilyPosterior(decision="credible", credible_mass=1.0).fit(data, ctx)
    np.testing.assert_allclose(post.decision_weights(), post.posterior)
    assert (MetricFamilyPosterior(decision="credible").fit(data, ctx).decision_weights() > 0).sum() < (post.posterior > 0).sum()


def test_errors_and_validation(ctx):
    with pytest.raises(NotFittedError, match="call fit"):
        MetricFamilyPosterior().score_many({Metric.FLOPS: np.ones(2)}, ctx)
    with pytest.raises(Exception, match="at least one comparison"):
        MetricFamilyPosterior().fit([], ctx)
    for bad in ({"temperature": 0}, {"lapse": 1.0}, {"thresholds": (0.0, 0.5)}, {"family_prior": (1, 1)}, {"credible_mass": 0}, {"weighted_samples": -1}):
        with pytest.raises(ValueError):
            MetricFamilyConfig(**bad)


def test_ranknet_uses_the_prior_when_it_explains_the_judgments(ctx):
    from reward_models.ranknet import RankNetRewardModel

    inside = RankNetRewardModel(seed=0).fit(judged(ctx, "accuracy", 10), ctx)
    assert inside.mode == "prior" and inside.metadata["prior_agreement"] == 1.0
    assert inside.metadata["epochs"] == 0  # no network was trained
    lat = ctx.stats(Metric.LATENCY)
    peak = lambda m: -abs(m[Metric.LATENCY] - (lat.min + lat.max) / 2)  # noqa: E731  (outside the family)
    outside = RankNetRewardModel(seed=0).fit(judged(ctx, peak, 60), ctx)
    assert outside.mode == "prior+network" and outside.input_names[-1] == "prior"
    assert outside.metadata["prior_agreement"] < 0.9 and outside.metadata["epochs"] > 0
    # One careless click in 40 (the same pairs as the clean user's, one answer reversed): the prior
    # still explains the judgments (>= 90 % ordered) and is the model ...
    noisy = judged(ctx, "accuracy", 40, noise=NoiseModel(flip_probability=0.05))
    clean = judged(ctx, "accuracy", 40)
    flipped = sum(n.outcome is not c.outcome for n, c in zip(noisy, clean, strict=True))
    assert flipped == 1
    tolerant = RankNetRewardModel(seed=0).fit(noisy, ctx)
    assert tolerant.mode == "prior" and tolerant.metadata["prior_agreement"] == pytest.approx(39 / 40)
    assert tolerant.posterior.top_hypotheses(1)[0][1] == "selective: test_accuracy"
    # ... while a judge who reverses 30 % of the answers is not explained: the network is trained.
    careless = RankNetRewardModel(seed=0).fit(judged(ctx, "accuracy", 30, noise=NoiseModel(flip_probability=0.3)), ctx)
    assert careless.mode == "prior+network" and careless.metadata["prior_agreement"] < 0.9
    with pytest.raises(NotFittedError, match="no network"):
        inside.predict(np.zeros((1, 8)))


def test_the_score_averages_the_most_probable_structure(ctx):
    """Few judgments of an accuracy user leave some mass on "accuracy where X is not the worst"
    constraints; the default decision scores with the accuracy metric alone, the full mean does not."""
    data = judged(ctx, "accuracy", 6)
    post = MetricFamilyPosterior().fit(data, ctx)
    structures = post.structure_posterior()
    assert next(iter(structures)) == "selective: test_accuracy"
    assert abs(sum(structures.values()) - 1) < 1e-9 and len(structures) == 4 + 1 + 12
    w = post.decision_weights()
    assert w[0] == pytest.approx(1.0) and w[1:].sum() == pytest.approx(0.0)  # hypothesis 0 = selective accuracy
    full = MetricFamilyPosterior(decision="mean").fit(data, ctx)
    np.testing.assert_allclose(full.decision_weights(), full.posterior)
    with pytest.raises(ValueError, match="decision must be one of"):
        MetricFamilyConfig(decision="map")


def test_explains_a_constraint_in_the_metric_units(ctx):
    post = MetricFamilyPosterior().fit(judged(ctx, "flop_constraint", 60), ctx)
    (mass, text), *_ = post.explain()
    assert mass > 0.5 and text.startswith("best test accuracy with flops at most")
    limit = float(text.rsplit(" ", 1)[1])
    median = ctx.stats(Metric.FLOPS).median
    assert abs(limit - median) < 0.25 * (ctx.stats(Metric.FLOPS).max - ctx.stats(Metric.FLOPS).min)


def test_the_posterior_fits_and_scores_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from tests.conftest import RandomMetricsBenchmark\n"
        "from natsbench_gym.rewards import ScoringContext\n"
        "from reward_models import MetricFamilyPosterior, PreferenceDataset, RandomPairSelector, SyntheticUser\n"
        "ctx = ScoringContext.create(RandomMetricsBenchmark(seed=0), 'cifar10', 200, accuracy_metric='test_accuracy')\n"
        "rng = np.random.default_rng(0)\n"
        "pairs = RandomPairSelector().select(range(50), 5, rng)\n"
        "post = MetricFamilyPosterior().fit(PreferenceDataset(SyntheticUser('accuracy', ctx).judge_many(pairs, rng)), ctx)\n"
        "post.score_many(ctx.query(np.arange(10), post.required_metrics(ctx)), ctx)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert out.stdout.strip() == "False"


def test_log_evidence_is_the_marginal_likelihood_and_needs_no_fit(ctx):
    data = judged(ctx, "latency", 15)
    post = MetricFamilyPosterior().fit(data, ctx)
    cs = data.comparisons
    idx = np.array([[c.arch_a.index, c.arch_b.index] for c in cs])
    y = np.array([c.outcome.target for c in cs])
    x = post.normaliser.transform(ctx.query(idx.reshape(-1), post.normaliser.metrics)).reshape(len(cs), 2, -1)
    fresh = MetricFamilyPosterior()
    z = fresh.log_evidence(x[:, 0], x[:, 1], y)
    lp = post._hyp.log_prior + post.log_likelihood(x[:, 0], x[:, 1], y)
    assert z == pytest.approx(float(np.log(np.sum(np.exp(lp - lp.max()))) + lp.max()))
    # the same pairs judged the other way are far less likely under the family
    assert fresh.log_evidence(x[:, 0], x[:, 1], 1.0 - y) < z - 5
