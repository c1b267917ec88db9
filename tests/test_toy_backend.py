"""A benchmark backend defined here alone, with no edit of the package, behind ``gym.make`` and an agent.

The toy backend covers the topology space with metrics computed in this file from each cell's ops
(one dataset, one made-up budget of 7 epochs, no latency) and an official index order of its own
(the codes reversed). It declares its capabilities; the env, the agents and the preference
interface read them, not the backend's name.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents import RandomSearch, RegularizedEvolution
from natsbench_gym import ENV_IDS, Benchmark, BenchmarkCapabilities, Dataset, Metric
from natsbench_gym.spaces import make_space
from preference_ui.catalog import MetricCatalog

TOY_BUDGET = 7


def toy_metrics(encodings: np.ndarray) -> dict[Metric, np.ndarray]:
    """The toy numbers: 3x3 convolutions are accurate and costly, 1x1 ones less of both."""
    enc = np.asarray(encodings)
    conv3 = (enc == 3).sum(axis=1)
    conv1 = (enc == 2).sum(axis=1)
    tie_break = enc[:, 0] * 0.01  # distinct values among equally good cells, so the best is unique
    return {
        Metric.VALID_ACCURACY: 40.0 + 8.0 * conv3 + 3.0 * conv1 + tie_break,
        Metric.TEST_ACCURACY: 40.5 + 8.0 * conv3 + 3.0 * conv1 + tie_break,
        Metric.PARAMS: 0.1 + 0.2 * conv3 + 0.05 * conv1,
        Metric.FLOPS: 10.0 + 30.0 * conv3 + 5.0 * conv1,
        Metric.TRAIN_TIME: 100.0 + 10.0 * conv3,
    }


class ToyBenchmark(Benchmark):
    """The topology space, CIFAR-10 only, metrics from :func:`toy_metrics`; counts its queries."""

    name = "toy"
    capabilities = BenchmarkCapabilities(whole_space=True)

    def __init__(self) -> None:
        space = make_space("topology")
        super().__init__(space, index_to_code=np.arange(space.size, dtype=np.int64)[::-1].copy())
        self._values = toy_metrics(self.encodings())  # in official index order
        self.queried: list[int] = []  # architectures per _query_indices call

    @property
    def datasets(self) -> tuple[Dataset, ...]:
        return (Dataset.CIFAR10,)

    @property
    def budgets(self) -> tuple[int, ...]:
        return (TOY_BUDGET,)

    def available_metrics(self, dataset, budget=None) -> frozenset[Metric]:
        self.check_dataset(dataset)
        self.check_budget(budget)
        return frozenset(self._values)

    def _query_indices(self, indices, dataset, budget, metrics, device):
        self.queried.append(len(indices))
        return {m: self._values[m][indices] for m in metrics}


class LazyToyBenchmark(ToyBenchmark):
    """The same numbers from a backend that cannot afford the whole space at once."""

    name = "lazy-toy"
    capabilities = BenchmarkCapabilities(whole_space=False)


def build(env: gym.Env, encoding) -> dict:
    env.reset(seed=0)
    for action in encoding:
        *_, info = env.step(action)
    return info


@pytest.fixture
def toy() -> ToyBenchmark:
    return ToyBenchmark()


def test_gym_make_runs_an_env_on_the_toy_backend(toy):
    env = gym.make(ENV_IDS["topology"], benchmark=toy, reward_model="accuracy")
    base = env.unwrapped
    assert base.benchmark is toy and base.budget == TOY_BUDGET and base.dataset is Dataset.CIFAR10
    check_env(base)
    whole_space_queries = len(toy.queried)
    assert toy.space.size in toy.queried  # declared whole_space: the env read the space at once
    best = (3, 3, 3, 3, 3, 3)
    info = build(env, best)
    assert info["index"] == toy.index(best) == toy.space.size - 1 - toy.space.code(best)
    assert info["arch"] == toy.arch_str(info["index"])
    expected = {m.value: float(v[0]) for m, v in toy_metrics(np.array([best])).items()}
    assert info["metrics"] == pytest.approx(expected)
    assert info["reward"] == pytest.approx(1.0)  # the most accurate cell of the space
    assert info["train_time"] == pytest.approx(160.0) and info["budget"] == TOY_BUDGET
    assert info["benchmark"] == toy.describe()
    worst = build(env, (0, 0, 0, 0, 0, 0))
    assert worst["reward"] == pytest.approx(0.0)
    assert len(toy.queried) == whole_space_queries  # evaluations are lookups in what the env holds
    assert MetricCatalog(base.context).whole_space


def test_a_lazy_toy_backend_is_queried_one_architecture_at_a_time():
    lazy = LazyToyBenchmark()
    env = gym.make(ENV_IDS["topology"], benchmark=lazy)
    assert lazy.queried == []  # nothing precomputed
    info = build(env, (3, 2, 3, 1, 0, 4))
    assert lazy.queried.count(1) == 1  # one record, through Benchmark.query_resolved (and the statistics)
    assert info["metrics"]["valid_accuracy"] == pytest.approx(40.0 + 8 * 2 + 3 + 0.03)
    assert info["reward"] == pytest.approx((8 * 2 + 3 + 0.03) / (8 * 6 + 0.03))
    build(env, (3, 2, 3, 1, 0, 4))
    assert lazy.queried.count(1) == 1  # the answer is kept
    assert not MetricCatalog(env.unwrapped.context).whole_space


def test_agents_search_the_toy_backend(toy):
    everything = toy_metrics(toy.space.all_encodings())[Metric.VALID_ACCURACY]
    top_percent = np.quantile(everything, 0.99)
    for agent in (RegularizedEvolution(population_size=10, sample_size=5, seed=0), RandomSearch(seed=0)):
        env = gym.make(ENV_IDS["topology"], benchmark=toy)
        result = agent.search(env, budget=200)
        assert len(result.history) == 200 == env.unwrapped.num_evaluations
        encodings = np.array([ev.encoding for ev in result.history])
        truth = toy_metrics(encodings)
        np.testing.assert_allclose([ev.metrics["valid_accuracy"] for ev in result.history], truth[Metric.VALID_ACCURACY])
        assert result.history[-1].total_train_time == pytest.approx(truth[Metric.TRAIN_TIME].sum())
        assert result.best.metrics["valid_accuracy"] == pytest.approx(truth[Metric.VALID_ACCURACY].max())
        if isinstance(agent, RegularizedEvolution):  # evolution climbs to the top 1% of the toy space
            assert result.best.metrics["valid_accuracy"] >= top_percent


def test_constrained_search_on_the_toy_backend(toy):
    env = gym.make(ENV_IDS["topology"], benchmark=toy, max_params=0.5, forbidden_ops=("none",))
    base = env.unwrapped
    assert base.constrained and not gym.make(ENV_IDS["topology"], benchmark=toy).unwrapped.constrained
    result = RegularizedEvolution(population_size=10, sample_size=5, seed=1).search(env, budget=100)
    encodings = np.array([ev.encoding for ev in result.history])
    assert (toy_metrics(encodings)[Metric.PARAMS] <= 0.5).all() and (encodings != 0).all()
    assert all(base.is_feasible(ev.encoding) for ev in result.history)
