"""reward_models.fixed: the paper's metrics (Eqs. 3-8), user-built metrics, reward vs loss; evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from natsbench_gym.errors import UnknownNameError
from natsbench_gym.rewards import (
    FunctionReward,
    RewardModel,
    ScoringContext,
    WeightedSum,
    as_reward_model,
    make_fixed_metric,
    utility,
)
from natsbench_gym.types import Metric
from reward_models import fixed
from reward_models.evaluation import pairwise_accuracy, top_k_precision


@pytest.fixture(scope="module")
def ctx(random_metrics_bench) -> ScoringContext:
    return ScoringContext.create(random_metrics_bench, "cifar10", 200, accuracy_metric="test_accuracy")


@pytest.fixture(scope="module")
def space_metrics(ctx) -> dict[Metric, np.ndarray]:
    return ctx.query(None)


def test_paper_metrics_are_the_six_of_table_one_in_row_order():
    assert fixed.PAPER_METRICS == ("accuracy_constraint", "accuracy", "flop_constraint", "latency", "params", "weighted")
    for name in fixed.PAPER_METRICS:
        assert make_fixed_metric(name).name == name
        assert make_fixed_metric("h_" + name).name == name


def test_builders_match_the_registry(ctx, space_metrics):
    builders = {
        "accuracy": fixed.h_accuracy, "latency": fixed.h_latency, "params": fixed.h_params, "flops": fixed.h_flops,
        "weighted": fixed.h_weighted, "flop_constraint": fixed.h_flop_constraint,
        "accuracy_constraint": fixed.h_accuracy_constraint,
    }
    for name, build in builders.items():
        expected = make_fixed_metric(name).score_many(space_metrics, ctx)
        np.testing.assert_array_equal(build().score_many(space_metrics, ctx), expected)


def test_selective_metrics_follow_their_metric(ctx, space_metrics):
    acc = space_metrics[Metric.TEST_ACCURACY]
    lat = space_metrics[Metric.LATENCY]
    assert np.argmax(fixed.h_accuracy().score_many(space_metrics, ctx)) == np.argmax(acc)
    assert np.argmax(fixed.h_latency().score_many(space_metrics, ctx)) == np.argmin(lat)
    assert np.argmax(fixed.h_params().score_many(space_metrics, ctx)) == np.argmin(space_metrics[Metric.PARAMS])


def test_weighted_is_the_equal_weight_mean_of_four_utilities(ctx, space_metrics):
    u = [utility(m, space_metrics[m], ctx) for m in (Metric.TEST_ACCURACY, Metric.LATENCY, Metric.PARAMS, Metric.FLOPS)]
    np.testing.assert_allclose(fixed.h_weighted().score_many(space_metrics, ctx), np.mean(u, axis=0))


def test_flop_constraint_rewards_the_most_accurate_network_under_the_median_flops(ctx, space_metrics):
    """Eq. 7, meaningful reading: accuracy among networks at or under the FLOPs threshold."""
    metric = fixed.h_flop_constraint()
    assert metric.threshold_value(ctx) == ctx.stats(Metric.FLOPS).median
    reward = metric.score_many(space_metrics, ctx)
    flops, acc = space_metrics[Metric.FLOPS], space_metrics[Metric.TEST_ACCURACY]
    feasible = flops <= np.median(flops)
    assert np.all(reward[~feasible] == 0)
    np.testing.assert_allclose(reward[feasible], utility(Metric.TEST_ACCURACY, acc[feasible], ctx))
    best = np.argmax(reward)
    assert feasible[best] and acc[best] == acc[feasible].max()


def test_accuracy_constraint_rewards_the_cheapest_network_above_the_median_accuracy(ctx, space_metrics):
    """Eq. 8, meaningful reading: fewest FLOPs among networks at or above the accuracy threshold."""
    metric = fixed.h_accuracy_constraint()
    assert metric.threshold_value(ctx) == ctx.stats(Metric.TEST_ACCURACY).median
    reward = metric.score_many(space_metrics, ctx)
    flops, acc = space_metrics[Metric.FLOPS], space_metrics[Metric.TEST_ACCURACY]
    feasible = acc >= np.median(acc)
    assert np.all(reward[~feasible] == 0)
    best = np.argmax(reward)
    assert feasible[best] and flops[best] == flops[feasible].min()


def test_explicit_thresholds_are_in_the_metrics_units(ctx, space_metrics):
    reward = fixed.h_flop_constraint(threshold=50.0).score_many(space_metrics, ctx)
    assert np.all(reward[space_metrics[Metric.FLOPS] > 50.0] == 0)
    ok = space_metrics[Metric.FLOPS] <= 50.0
    np.testing.assert_allclose(reward[ok], utility(Metric.TEST_ACCURACY, space_metrics[Metric.TEST_ACCURACY][ok], ctx))


@pytest.mark.parametrize("name", ["accuracy", "latency", "params", "flops", "weighted", "flop_constraint", "accuracy_constraint"])
def test_reward_and_loss_agree(ctx, space_metrics, name):
    metric = make_fixed_metric(name)
    reward = metric.score_many(space_metrics, ctx)
    loss = metric.loss_many(space_metrics, ctx)
    np.testing.assert_allclose(loss, 1.0 - reward)
    np.testing.assert_allclose(fixed.loss_many(metric, space_metrics, ctx), loss)
    assert reward.min() >= 0 and reward.max() <= 1
    assert np.argmin(loss) == np.argmax(reward)


def test_loss_of_a_plain_reward_model_is_its_negated_score(ctx, space_metrics):
    class Plain:
        def score_many(self, metrics, context):
            return np.asarray(metrics[Metric.FLOPS]) * 2.0

    assert isinstance(as_reward_model(Plain()), RewardModel)
    np.testing.assert_allclose(fixed.loss_many(Plain(), space_metrics, ctx), -2.0 * space_metrics[Metric.FLOPS])
    with pytest.raises(TypeError, match="needs a reward model"):
        fixed.loss_many(object(), space_metrics, ctx)


def test_user_built_weighted_sum_over_any_metric(ctx, space_metrics):
    metric = fixed.weighted_sum({"accuracy": 3, "latency": 1}, name="fast_and_good")
    assert metric.name == "fast_and_good"
    assert metric.required_metrics(ctx) == (Metric.TEST_ACCURACY, Metric.LATENCY)
    expected = (3 * utility(Metric.TEST_ACCURACY, space_metrics[Metric.TEST_ACCURACY], ctx)
                + utility(Metric.LATENCY, space_metrics[Metric.LATENCY], ctx)) / 4
    np.testing.assert_allclose(metric.score_many(space_metrics, ctx), expected)


def test_weighted_sum_validates_names_and_weights():
    with pytest.raises(UnknownNameError, match="unknown metric 'latnecy'; did you mean 'latency'"):
        fixed.weighted_sum({"latnecy": 1.0})
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        fixed.weighted_sum({"flops": -1.0})
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        fixed.weighted_sum({"flops": 0.0})
    with pytest.raises(ValueError, match="at least one"):
        fixed.weighted_sum({})


def test_weighted_sums_are_hashable_and_compare_by_value():
    assert hash(WeightedSum()) == hash(WeightedSum())
    assert fixed.weighted_sum({"flops": 1}) == fixed.weighted_sum({Metric.FLOPS: 1.0})
    assert len({fixed.h_weighted(), fixed.h_weighted()}) == 1


def test_user_built_constraint(ctx, space_metrics):
    metric = fixed.constraint("accuracy", "latency", 5.0)
    assert metric.name == "accuracy_under_latency"
    reward = metric.score_many(space_metrics, ctx)
    fast = space_metrics[Metric.LATENCY] <= 5.0
    assert np.all(reward[~fast] == 0)
    np.testing.assert_allclose(reward[fast], utility(Metric.TEST_ACCURACY, space_metrics[Metric.TEST_ACCURACY][fast], ctx))
    with pytest.raises(UnknownNameError, match="did you mean 'flops'"):
        fixed.constraint("accuracy", "flopz")


def test_function_rewards_are_reward_models(ctx, space_metrics):
    metric = as_reward_model(lambda m: -m[Metric.PARAMS])
    assert isinstance(metric, FunctionReward) and isinstance(metric, RewardModel)
    some = {m: v[:5] for m, v in space_metrics.items()}
    np.testing.assert_allclose(metric.score_many(some, ctx), -some[Metric.PARAMS])


@pytest.mark.realdata
def test_constraint_directions_on_real_data(topology_bench):
    ctx = ScoringContext.create(topology_bench, "cifar100", 200, accuracy_metric="test_accuracy")
    metrics = ctx.query(None)
    flops, acc = metrics[Metric.FLOPS], metrics[Metric.TEST_ACCURACY]
    best = np.argmax(fixed.h_flop_constraint().score_many(metrics, ctx))
    assert flops[best] <= ctx.stats(Metric.FLOPS).median
    assert acc[best] == acc[flops <= ctx.stats(Metric.FLOPS).median].max()
    best = np.argmax(fixed.h_accuracy_constraint().score_many(metrics, ctx))
    assert acc[best] >= ctx.stats(Metric.TEST_ACCURACY).median
    assert flops[best] == flops[acc >= ctx.stats(Metric.TEST_ACCURACY).median].min()


# --- evaluation -------------------------------------------------------------------------------------
def test_top_k_precision_basics():
    truth = np.arange(100.0)
    assert top_k_precision(truth, truth, 10) == 1.0
    assert top_k_precision(-truth, truth, 10) == 0.0
    scores = truth.copy()
    scores[95] = -1  # one of the true top 10 falls out of the model's top 10
    assert top_k_precision(scores, truth, 10) == 0.9


def test_top_k_precision_counts_ties_in_the_truth_as_hits():
    truth = np.array([5.0] * 15 + [1.0] * 85)  # 15 architectures share the best value
    scores = np.arange(100.0)[::-1]  # the model picks 10 of the 15
    assert top_k_precision(scores, truth, 10) == 1.0
    truth = np.array([1.0] * 5 + [0.0] * 95)  # a constraint metric: most are 0
    assert top_k_precision(np.arange(100.0)[::-1], truth, 10) == 1.0  # everything ties with the 10th best (0)


def test_top_k_precision_validates():
    with pytest.raises(ValueError, match="same length"):
        top_k_precision(np.zeros(3), np.zeros(4), 1)
    with pytest.raises(ValueError, match="k must be in 1..3"):
        top_k_precision(np.zeros(3), np.zeros(3), 4)
    with pytest.raises(ValueError, match="nan"):
        top_k_precision(np.zeros(3), np.array([1.0, np.nan, 2.0]), 1)


def test_pairwise_accuracy():
    truth = np.arange(10.0)
    assert pairwise_accuracy(truth, truth) == 1.0
    assert pairwise_accuracy(-truth, truth) == 0.0
    assert pairwise_accuracy(np.zeros(10), truth) == 0.5


def test_fixed_holds_only_its_own_builders():
    """The metrics and the protocol live in natsbench_gym.rewards; reward_models.fixed re-exports none of them."""
    import natsbench_gym.rewards as rewards

    for name in fixed.__all__:
        obj = getattr(fixed, name)
        assert getattr(obj, "__module__", fixed.__name__) == fixed.__name__, name
    assert not {"ScoringContext", "RewardModel", "BuiltinMetric", "make_fixed_metric", "utility"} & set(fixed.__all__)
    assert isinstance(fixed.MONASReward(), rewards.BuiltinMetric) and fixed.MONASReward().precomputable
