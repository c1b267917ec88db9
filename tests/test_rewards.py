"""natsbench_gym.rewards: the reward-model protocol (required metrics, precomputable) and its adapter."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from natsbench_gym import Metric
from natsbench_gym.errors import InvalidConfigError
from natsbench_gym.rewards import (
    FIXED_METRICS,
    FunctionReward,
    RewardModel,
    RewardModelAdapter,
    ScoringContext,
    as_reward_model,
    make_fixed_metric,
)


class ScoreOnly:
    """A duck-typed reward model: ``score_many`` and nothing else (plus extras of its own)."""

    name = "score_only"

    def __init__(self) -> None:
        self.calls = 0

    def score_many(self, metrics, context):
        self.calls += 1
        return -np.asarray(metrics[Metric.PARAMS], dtype=np.float64)

    def save(self, path):
        return f"saved to {path}"


class SaysWhatItReads(ScoreOnly):
    def required_metrics(self, context):
        return (Metric.PARAMS,)


class Static(SaysWhatItReads):
    """A full reward model that declares itself precomputable."""

    precomputable = True


@pytest.fixture(scope="module")
def tiny(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture(scope="module")
def ctx(tiny) -> ScoringContext:
    return ScoringContext.create(tiny, "cifar10", 200)


def test_builtin_metrics_are_full_precomputable_reward_models(ctx):
    assert make_fixed_metric("weighted").required_metrics(ctx) == (Metric.VALID_ACCURACY, Metric.PARAMS, Metric.FLOPS)
    for name in FIXED_METRICS:
        metric = make_fixed_metric(name)
        assert isinstance(metric, RewardModel) and metric.precomputable is True
        assert as_reward_model(metric) is metric
    function = as_reward_model(lambda m: m[Metric.FLOPS])
    assert isinstance(function, FunctionReward) and function.precomputable
    assert function.required_metrics(ctx) == tuple(m for m in Metric if ctx.has(m))


def test_a_score_many_only_object_gets_the_safe_defaults(ctx):
    plain = ScoreOnly()
    assert not isinstance(plain, RewardModel)  # the protocol declares required_metrics and precomputable
    model = as_reward_model(plain)
    assert isinstance(model, RewardModelAdapter) and isinstance(model, RewardModel) and model.model is plain
    assert model.precomputable is False
    assert model.required_metrics(ctx) == tuple(m for m in Metric if ctx.has(m))  # all the context has
    assert model.name == "score_only" and model.save("x") == "saved to x"  # its own attributes still answer
    np.testing.assert_array_equal(model.score_many({Metric.PARAMS: np.array([1.0, 2.0])}, ctx), [-1.0, -2.0])
    assert as_reward_model(model) is model
    nameless = as_reward_model(type("Nameless", (), {"score_many": lambda self, m, c: np.zeros(1)})())
    assert nameless.name == "Nameless"


def test_what_an_object_declares_is_kept(ctx):
    reads = as_reward_model(SaysWhatItReads())
    assert isinstance(reads, RewardModelAdapter) and reads.required_metrics(ctx) == (Metric.PARAMS,)
    assert reads.precomputable is False
    static = Static()
    assert isinstance(static, RewardModel) and as_reward_model(static) is static


def test_the_adapter_survives_pickling(ctx):
    """Async vector envs send the env's arguments, reward model included, to other processes."""
    model = pickle.loads(pickle.dumps(as_reward_model(SaysWhatItReads())))
    assert isinstance(model, RewardModelAdapter) and model.required_metrics(ctx) == (Metric.PARAMS,)


def test_bad_reward_models_are_typed_errors():
    with pytest.raises(InvalidConfigError, match="reward_model must be a fixed-metric name .* got int"):
        as_reward_model(42)
    with pytest.raises(TypeError, match="needs a score_many"):
        RewardModelAdapter(object())


def test_the_env_precomputes_only_what_declares_itself_precomputable(tiny):
    plain, static = ScoreOnly(), Static()
    lazy_env = gym.make("NATSBench-Topology-v0", benchmark=tiny, budget=200, reward_model=plain).unwrapped
    static_env = gym.make("NATSBench-Topology-v0", benchmark=tiny, budget=200, reward_model=static).unwrapped
    assert lazy_env._reward_table is None and plain.calls == 0
    assert static_env._reward_table is not None and static.calls == 1  # the whole space, once
    for env in (lazy_env, static_env):
        for _ in range(2):
            env.reset(seed=0)
            for action in (3, 3, 1, 2, 0, 4):
                *_, reward, _, _, info = env.step(action)
            assert reward == pytest.approx(-info["metrics"]["params"])
    assert plain.calls == 2 and static.calls == 1  # the plain model is asked at every evaluation
    assert isinstance(lazy_env.reward_model, RewardModelAdapter) and lazy_env.reward_model.model is plain


def test_the_env_checks_the_metrics_a_model_reads(tiny):
    class ReadsLatency(ScoreOnly):
        def required_metrics(self, context):
            return (Metric.LATENCY,)

    with pytest.raises(natsbench_gym.MissingMetricError, match="no latency"):  # the tiny tables have none
        gym.make("NATSBench-Topology-v0", benchmark=tiny, reward_model=ReadsLatency())


def test_learned_models_declare_they_are_not_precomputable():
    from reward_models import MetricFamilyPosterior

    assert MetricFamilyPosterior.precomputable is False
    pytest.importorskip("torch")
    from reward_models.ranknet import RankNetRewardModel

    assert RankNetRewardModel.precomputable is False
    assert isinstance(RankNetRewardModel(), RewardModel)
