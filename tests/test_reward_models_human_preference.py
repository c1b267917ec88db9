"""reward_models.human_preference: the Judge protocol, synthetic users from any metric or function (with and
without noise) and the synthetic preferences beyond the paper's six."""

from __future__ import annotations

import numpy as np
import pytest

from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import ScoringContext, utility
from natsbench_gym.types import Metric
from reward_models import fixed
from reward_models.human_preference import (
    EXTRA_USERS,
    Judge,
    NoiseModel,
    SyntheticUser,
    UtilityUser,
    make_synthetic_preference,
)
from reward_models.preferences import Comparison, Outcome
from reward_models.selection import RandomPairSelector


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar100", 200, accuracy_metric="test_accuracy")


@pytest.fixture(scope="module")
def pairs() -> list[tuple[int, int]]:
    return list(RandomPairSelector().select(range(2000), 3000, np.random.default_rng(0)))


def agreement(comparisons, utilities) -> float:
    right = [(u[0] > u[1]) == (c.outcome is Outcome.A) for c, u in zip(comparisons, utilities, strict=True)]
    return float(np.mean(right))


@pytest.mark.parametrize("name", ["accuracy", "latency", "params", "weighted", "flop_constraint", "accuracy_constraint"])
def test_noiseless_users_always_agree_with_their_metric(ctx, pairs, name):
    user = SyntheticUser(name, ctx)
    judged = user.judge_many(pairs[:500], np.random.default_rng(0), selector="random")
    u = user.utilities(np.array(pairs[:500]).ravel()).reshape(-1, 2)
    for c, (ua, ub) in zip(judged, u, strict=True):
        expected = Outcome.A if ua > ub else Outcome.B if ub > ua else Outcome.TIE
        assert c.outcome is expected
    assert user.name == f"synthetic:{name}"
    assert all(c.judge == user.name and c.selector == "random" and c.dataset == "cifar100" for c in judged)


def test_constraint_users_tie_on_violating_pairs(ctx, pairs):
    user = SyntheticUser("flop_constraint", ctx)
    judged = user.judge_many(pairs[:500], np.random.default_rng(0))
    u = user.utilities(np.array(pairs[:500]).ravel()).reshape(-1, 2)
    both_zero = (u == 0).all(axis=1)
    assert both_zero.sum() > 50
    assert all(c.outcome is Outcome.TIE for c, z in zip(judged, both_zero, strict=True) if z)


def test_users_from_functions_and_reward_models(ctx):
    by_function = SyntheticUser(lambda m: -m[Metric.LATENCY], ctx, name="hates_lag")
    by_model = SyntheticUser(fixed.weighted_sum({"latency": 1}), ctx)
    rng = np.random.default_rng(0)
    a = [c.outcome for c in by_function.judge_many([(1, 2), (3, 4), (5, 6)], rng)]
    b = [c.outcome for c in by_model.judge_many([(1, 2), (3, 4), (5, 6)], rng)]
    assert a == b and by_function.name == "hates_lag" and by_model.name == "synthetic:weighted_sum"
    constant = SyntheticUser(lambda m: 1.0, ctx)
    assert {c.outcome for c in constant.judge_many([(1, 2), (3, 4)], rng)} == {Outcome.TIE}


def test_flip_probability_flips_that_share_of_answers(ctx, pairs):
    user = SyntheticUser("latency", ctx, NoiseModel(flip_probability=0.2))
    judged = user.judge_many(pairs, np.random.default_rng(1))
    u = user.utilities(np.array(pairs).ravel()).reshape(-1, 2)
    assert agreement(judged, u) == pytest.approx(0.8, abs=0.03)


def test_temperature_makes_close_calls_coin_flips(ctx, pairs):
    u_cold = SyntheticUser("latency", ctx, NoiseModel(temperature=0.01))
    u_hot = SyntheticUser("latency", ctx, NoiseModel(temperature=100.0))
    utilities = u_cold.utilities(np.array(pairs).ravel()).reshape(-1, 2)
    cold = agreement(u_cold.judge_many(pairs, np.random.default_rng(2)), utilities)
    hot = agreement(u_hot.judge_many(pairs, np.random.default_rng(2)), utilities)
    assert cold > 0.97
    assert hot == pytest.approx(0.5, abs=0.04)


def test_noisy_users_are_reproducible_under_a_seed(ctx, pairs):
    user = SyntheticUser("weighted", ctx, NoiseModel(temperature=0.1, flip_probability=0.1))
    first = [c.outcome for c in user.judge_many(pairs[:300], np.random.default_rng(7))]
    again = [c.outcome for c in user.judge_many(pairs[:300], np.random.default_rng(7))]
    other = [c.outcome for c in user.judge_many(pairs[:300], np.random.default_rng(8))]
    assert first == again and first != other


def test_tie_tolerance(ctx):
    user = SyntheticUser("accuracy", ctx, NoiseModel(tie_tolerance=2.0))  # every utility gap is < 2
    assert {c.outcome for c in user.judge_many([(0, 1), (2, 3)], np.random.default_rng(0))} == {Outcome.TIE}


def test_noise_model_validates():
    with pytest.raises(ValueError, match="flip_probability must be in"):
        NoiseModel(flip_probability=0.7)
    with pytest.raises(ValueError, match="temperature must be finite and >= 0"):
        NoiseModel(temperature=-1.0)
    with pytest.raises(ValueError, match="tie_tolerance"):
        NoiseModel(tie_tolerance=float("nan"))
    assert NoiseModel().is_noiseless and not NoiseModel(flip_probability=0.1).is_noiseless


def test_a_user_is_a_judge_of_pair_batches(ctx):
    user = SyntheticUser("params", ctx)
    batch = RandomPairSelector().select(range(50), 4, np.random.default_rng(0))
    judged = user(batch)
    assert [c.indices for c in judged] == list(batch.pairs)
    assert all(isinstance(c, Comparison) and c.selector == "random" for c in judged)
    noisy = SyntheticUser("params", ctx, NoiseModel(flip_probability=0.1))
    with pytest.raises(ValueError, match="pass rng="):
        noisy(batch)
    assert len(noisy(batch, rng=np.random.default_rng(0))) == 4


def test_judge_records_official_strings(ctx, random_metrics_bench):
    c = SyntheticUser("accuracy", ctx).judge(11, 284, np.random.default_rng(0))
    assert c.arch_a.arch_str == random_metrics_bench.arch_str(11)
    assert c.arch_b.index == 284


def test_synthetic_users_and_people_are_judges(ctx):
    assert isinstance(SyntheticUser("params", ctx), Judge)
    assert not isinstance(object(), Judge)


# --- the synthetic preferences beyond the paper's six -------------------------------------------------
def test_extra_users_are_the_documented_functions_of_the_utilities(ctx):
    archs = np.arange(0, 15625, 7)
    metrics = ctx.query(archs)
    acc, lat, par, flo = (utility(m, metrics[m], ctx) for m in (ctx.accuracy_metric, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS))

    def scores(name, seed=None):
        return make_synthetic_preference(name, ctx, seed=seed).score_many(metrics, ctx)

    np.testing.assert_array_equal(scores("worst_of"), np.minimum(acc, lat))
    np.testing.assert_array_equal(scores("sweet_spot"), acc - np.abs(lat - 0.5))
    w = np.random.default_rng(np.random.SeedSequence(5)).dirichlet(np.ones(4))
    np.testing.assert_allclose(scores("random_weighted", np.random.SeedSequence(5)), w[0] * acc + w[1] * lat + w[2] * par + w[3] * flo)
    np.testing.assert_array_equal(scores("random_weighted", 5), scores("random_weighted", 5))  # an int seed works too
    assert not np.allclose(scores("random_weighted", 5), scores("random_weighted", 6))
    threshold = np.quantile(ctx.space_values(ctx.accuracy_metric), 0.7)
    feasible = metrics[ctx.accuracy_metric] >= threshold
    np.testing.assert_allclose(scores("latency_constraint"), np.where(feasible, lat, 0.0))
    assert set(EXTRA_USERS) == {"random_weighted", "latency_constraint", "worst_of", "sweet_spot"}


def test_make_synthetic_preference_knows_the_paper_metrics_and_says_what_is_wrong(ctx):
    assert make_synthetic_preference("h_weighted", ctx).name == "weighted"
    user = SyntheticUser(make_synthetic_preference("worst_of", ctx), ctx)
    assert user.name == "synthetic:worst_of" and repr(user.reward) == "UtilityUser('worst_of')"
    assert user.reward.required_metrics(ctx) == (Metric.TEST_ACCURACY, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS)
    with pytest.raises(UnknownNameError, match="unknown synthetic preference 'sweetspot'; did you mean 'sweet_spot'"):
        make_synthetic_preference("sweetspot", ctx)
    with pytest.raises(ValueError, match="pass seed="):
        make_synthetic_preference("random_weighted", ctx)


def test_a_utility_user_of_any_function(ctx):
    fast = UtilityUser("fast", lambda acc, lat, par, flo: lat)
    judged = SyntheticUser(fast, ctx).judge_many([(1, 2), (3, 4)], np.random.default_rng(0))
    same = SyntheticUser("latency", ctx).judge_many([(1, 2), (3, 4)], np.random.default_rng(0))
    assert [c.outcome for c in judged] == [c.outcome for c in same]


@pytest.mark.realdata
def test_robustness_users_are_seeded_and_span_inside_and_outside_the_family(topology_bench):
    ctx = ScoringContext.create(topology_bench, "cifar10", 200, accuracy_metric="test_accuracy")
    archs = np.arange(0, 15625, 50)
    metrics = ctx.query(archs)

    def utilities(name, seed):
        user = make_synthetic_preference(name, ctx, np.random.SeedSequence(seed))
        return user.score_many(metrics, ctx)

    np.testing.assert_array_equal(utilities("random_weighted", 1), utilities("random_weighted", 1))
    assert not np.allclose(utilities("random_weighted", 1), utilities("random_weighted", 2))
    feasible = utilities("latency_constraint", 0) > 0
    acc = metrics[ctx.accuracy_metric]
    assert 0.2 < feasible.mean() < 0.4 and acc[feasible].min() >= np.quantile(ctx.space_values(ctx.accuracy_metric), 0.7)
    worst, sweet = utilities("worst_of", 0), utilities("sweet_spot", 0)
    assert worst.shape == sweet.shape == archs.shape and np.isfinite(worst).all() and np.isfinite(sweet).all()
