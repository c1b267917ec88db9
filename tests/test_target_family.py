"""The metric family's target structures (a sweet spot): off for the paper's protocol, on in the
interactive loop (docs/personalization.md, "A sweet spot in the family")."""

from __future__ import annotations

import numpy as np
import pytest

from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models import RandomPairSelector, RankNetRewardModel
from reward_models.evaluation import top_k_precision
from reward_models.human_preference import SyntheticUser, UtilityUser
from reward_models.library import PopulationPrior, PosteriorSummary
from reward_models.posterior import MetricFamilyConfig, MetricFamilyPosterior
from reward_models.preferences import PreferenceDataset
from reward_models.ranknet import RankNetConfig

TARGET = (1.0, 1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200, accuracy_metric="test_accuracy")


def sweet_spot(level: float = 0.5) -> UtilityUser:
    """Accuracy less the distance of the latency utility from ``level`` (the extra user's form)."""
    return UtilityUser("sweet", lambda acc, lat, par, flo: acc - np.abs(lat - level))


def judged(ctx, preference, n_pairs, seed=0, population=range(400)):
    rng = np.random.default_rng(seed)
    pairs = RandomPairSelector().select(population, n_pairs, rng)
    return PreferenceDataset(SyntheticUser(preference, ctx).judge_many(pairs, rng, selector=pairs.strategy))


def precision(model, preference, ctx, k=10) -> float:
    test = np.arange(1000, 1600)
    truth = SyntheticUser(preference, ctx).utilities(test)
    return top_k_precision(model.score_many(ctx.query(test, model.required_metrics(ctx)), ctx), truth, k)


def test_the_target_family_is_off_by_default_and_then_not_built(ctx):
    data = judged(ctx, "weighted", 20)
    default = MetricFamilyPosterior().fit(data, ctx)
    three = MetricFamilyPosterior(family_prior=(1, 1, 1)).fit(data, ctx)
    assert MetricFamilyConfig().family_prior == (1.0, 1.0, 1.0, 0.0) == three.config.family_prior
    assert default.log_posterior.shape == three.log_posterior.shape  # no target rows at all
    np.testing.assert_array_equal(default.log_posterior, three.log_posterior)
    assert set(default.family_posterior()) == {"selective", "weighted", "constraint"}
    on = MetricFamilyPosterior(family_prior=TARGET).fit(data, ctx)
    # 12 (objective, metric) pairs x 19 levels x 3 weights more
    assert on.log_posterior.size == default.log_posterior.size + 12 * 19 * 3
    assert set(on.family_posterior()) == {"selective", "weighted", "constraint", "target"}
    assert RankNetConfig().target_prior == 0.0


def test_a_sweet_spot_user_is_recognised_with_its_level_in_the_metric_s_units(ctx):
    user = sweet_spot(0.5)
    data = judged(ctx, user, 40)
    on = MetricFamilyPosterior(family_prior=TARGET).fit(data, ctx)
    off = MetricFamilyPosterior().fit(data, ctx)
    assert on.family_posterior()["target"] > 0.9
    mass, text = on.explain(1)[0]
    assert text.startswith("best test accuracy with latency near"), text
    stats = ctx.stats(Metric.LATENCY)
    middle = 0.5 * (stats.min + stats.max)  # utility 0.5
    assert abs(float(text.rsplit(" ", 1)[1]) - middle) <= 0.1 * (stats.max - stats.min), (text, middle)
    assert on.top_hypotheses(1)[0][1].startswith("target: 0.50 test_accuracy - 0.50 |latency - 0.")
    # the family with a target ranks the held-out architectures far better than without it
    p_on, p_off = precision(on, user, ctx), precision(off, user, ctx)
    assert p_on >= 0.7 and p_on >= p_off + 0.3, (p_on, p_off)


def test_the_target_utility_is_the_distance_from_the_level(ctx):
    post = MetricFamilyPosterior(family_prior=TARGET).fit(judged(ctx, sweet_spot(0.3), 40), ctx)
    hyp = post._hyp
    u = np.array([[0.9, 0.3, 0.5, 0.5], [0.9, 0.7, 0.5, 0.5], [0.9, 0.1, 0.5, 0.5], [0.5, 0.3, 0.5, 0.5]])
    rows = np.flatnonzero(hyp.family == 3)
    t = rows - hyp.weights.shape[0] - hyp.objective.size
    pick = rows[(hyp.t_objective[t] == 0) & (hyp.t_metric[t] == 1) & np.isclose(hyp.t_level[t], 0.3) & np.isclose(hyp.t_weight[t], 0.5)]
    (value,) = hyp.utilities(u, u, pick)
    np.testing.assert_allclose(value, [0.45, 0.45 - 0.2, 0.45 - 0.1, 0.25])  # below the level costs as above it


@pytest.mark.parametrize("name", ["weighted", "flop_constraint", "latency"])
def test_in_family_users_keep_their_structure_and_ranking(name, ctx):
    """The target structures do not take over a user the paper's family explains."""
    data = judged(ctx, name, 30, seed=1)
    on = MetricFamilyPosterior(family_prior=TARGET).fit(data, ctx)
    off = MetricFamilyPosterior().fit(data, ctx)
    assert on.family_posterior()["target"] < 0.2
    assert next(iter(on.structure_posterior())) == next(iter(off.structure_posterior()))
    assert precision(on, name, ctx) >= precision(off, name, ctx) - 0.1


def test_settings_are_checked():
    for bad in ({"family_prior": (1, 1)}, {"family_prior": (1, 1, 1, -1)}, {"target_levels": (0.0, 0.5)}, {"target_weights": ()}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MetricFamilyConfig(**bad)
    for bad in (-1.0, True, float("inf")):
        with pytest.raises(ValueError, match="target_prior"):
            RankNetConfig(target_prior=bad)


def test_a_ranknet_with_target_structures_survives_a_save(ctx, tmp_path):
    data = judged(ctx, sweet_spot(0.6), 30)
    model = RankNetRewardModel(seed=0, target_prior=1.0).fit(data, ctx)
    assert model.mode == "prior" and model.posterior.family_posterior()["target"] > 0.9
    model.save(tmp_path / "m.pt")
    loaded = RankNetRewardModel.load(tmp_path / "m.pt")
    metrics = ctx.query(np.arange(300), model.required_metrics(ctx))
    np.testing.assert_array_equal(loaded.score_many(metrics, ctx), model.score_many(metrics, ctx))
    assert loaded.config.target_prior == 1.0


def test_the_interactive_loop_s_model_has_target_structures_and_one_shot_has_not(ctx):
    from agents.personalization import INTERACTIVE_TARGET_PRIOR, Personalization

    user = SyntheticUser("accuracy", ctx)
    interactive, one_shot = Personalization(user, 10), Personalization(user, 10, schedule="one-shot")
    assert INTERACTIVE_TARGET_PRIOR > 0
    assert interactive.new_model(0).config.target_prior == INTERACTIVE_TARGET_PRIOR
    assert one_shot.new_model(0).config.target_prior == 0.0
    assert "target" in interactive.prior_model(ctx).family_posterior()
    assert "target" not in one_shot.prior_model(ctx).family_posterior()
    custom = Personalization(user, 10, make_reward_model=lambda s: RankNetRewardModel(seed=s))
    assert "target" not in custom.prior_model(ctx).family_posterior()


def test_the_population_prior_reads_sessions_with_and_without_target_structures(ctx, tmp_path):
    with_t = MetricFamilyPosterior(family_prior=TARGET).fit(judged(ctx, sweet_spot(0.5), 30), ctx)
    without = MetricFamilyPosterior().fit(judged(ctx, "accuracy", 30), ctx)
    s_with, s_without = PosteriorSummary.of(with_t), PosteriorSummary.of(without)
    assert s_with.target.size == 12 * 19 * 3 and s_without.target.size == 0
    assert s_with.constraint.size == s_without.constraint.size == 12 * 19
    back = PosteriorSummary.from_bytes(s_with.to_bytes())
    np.testing.assert_allclose(back.target, s_with.target, rtol=1e-6)
    # a blob written before the target structures existed has no "target" entry
    import io

    old = io.BytesIO()
    z = dict(np.load(io.BytesIO(s_without.to_bytes())))
    z.pop("target")
    np.savez(old, **z)
    assert PosteriorSummary.from_bytes(old.getvalue()).target.size == 0

    pop = PopulationPrior([s_with, s_without])
    names = [m.value for m in with_t.normaliser.metrics]
    dist = pop.population_distribution(with_t._hyp, names, with_t.config.thresholds)
    target_rows = with_t._hyp.family == 3
    # the session without target structures held no mass there: half the sweet-spot session's
    assert dist is not None and 0.2 < dist[target_rows].sum() < 0.6
    np.testing.assert_allclose(dist.sum(), 1.0)
    # a family without target structures reads the same population (its target part left out)
    off = pop.population_distribution(without._hyp, names, without.config.thresholds)
    assert off is not None and off.size == without._hyp.size and np.isclose(off.sum(), 1.0)
    # and the warm-started posterior of a new sweet-spot user with targets fits
    warm = MetricFamilyPosterior(family_prior=TARGET, population=pop).fit(judged(ctx, sweet_spot(0.5), 10, seed=3), ctx)
    assert warm.population_weight is not None and warm.family_posterior()["target"] > 0.5
