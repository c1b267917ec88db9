"""reward_models.users: synthetic users from any metric or function, with and without noise."""

from __future__ import annotations

import numpy as np
import pytest

from natsbench_gym.rewards import ScoringContext
from natsbench_gym.types import Metric
from reward_models import fixed
from reward_models.preferences import Comparison, Outcome
from reward_models.selection import RandomPairSelector
from reward_models.users import NoiseModel, SyntheticUser


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
