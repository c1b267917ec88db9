"""Batched and asynchronous searches (agents.parallel) and SearchAgent.prefetch / evaluate_many, on the
synthetic tables: the histories they promise to reproduce. Live executors: tests/test_live_executor.py."""

from __future__ import annotations

import gymnasium as gym
import pytest

import natsbench_gym
from agents import make_agent
from agents.base import SearchBudget
from agents.errors import AgentConfigError
from agents.evolution import RegularizedEvolution
from agents.parallel import AsyncRegularizedEvolution, ParallelRandomSearch
from agents.random_search import RandomSearch


@pytest.fixture(scope="module")
def tiny_topology(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def make_env(tiny_topology):
    def make(**kwargs):
        kwargs.setdefault("budget", 200)
        return gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, **kwargs)

    return make


def history(result):
    return [repr(e.to_dict()) for e in result.history]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_random_search_is_random_search(make_env, batch_size):
    serial = RandomSearch(seed=3).search(make_env(), budget=20)
    batched = ParallelRandomSearch(seed=3, batch_size=batch_size).search(make_env(), budget=20)
    assert history(batched) == history(serial)


def test_batched_evolution_with_batches_of_one_is_regularized_evolution(make_env):
    serial = RegularizedEvolution(population_size=6, sample_size=3, seed=5).search(make_env(), budget=30)
    for asynchronous in (False, True):
        agent = AsyncRegularizedEvolution(population_size=6, sample_size=3, seed=5, workers=1, asynchronous=asynchronous)
        assert history(agent.search(make_env(), budget=30)) == history(serial)


def test_asynchronous_evolution_without_concurrency_is_the_batched_search(make_env):
    """Futures that finish in submission order (a table, the in-process executor) make the
    asynchronous search the synchronous one with batches of ``workers``: reproducible."""
    sync = AsyncRegularizedEvolution(6, 3, seed=1, workers=3, asynchronous=False).search(make_env(), budget=31)
    asyn = AsyncRegularizedEvolution(6, 3, seed=1, workers=3, asynchronous=True).search(make_env(), budget=31)
    assert len(sync.history) == 31
    assert history(asyn) == history(sync)
    other = AsyncRegularizedEvolution(6, 3, seed=2, workers=3, asynchronous=False).search(make_env(), budget=31)
    assert history(other) != history(sync)


def test_batched_evolution_ages_its_population(make_env):
    agent = AsyncRegularizedEvolution(population_size=5, sample_size=2, seed=0, workers=4, asynchronous=False)
    result = agent.search(make_env(), budget=17)
    assert len(result.history) == 17
    assert [e.step for e in agent.population] == list(range(13, 18))  # the 5 youngest, oldest first


def test_evaluate_many_stops_at_the_budget(make_env):
    result = ParallelRandomSearch(seed=0, batch_size=8).search(make_env(), budget=SearchBudget(evaluations=5))
    assert len(result.history) == 5


def test_parallel_agents_by_name_and_typed_errors():
    assert make_agent("re_async", seed=0, workers=2, asynchronous=False).name == "re_async"
    assert make_agent("random_parallel", seed=0, batch_size=4).name == "random_parallel"
    with pytest.raises(AgentConfigError, match=r"workers must be a positive integer or None.*got 0"):
        AsyncRegularizedEvolution(workers=0)
    with pytest.raises(AgentConfigError, match=r"sample_size must be in 1..population_size=4, got 5"):
        AsyncRegularizedEvolution(population_size=4, sample_size=5)
    with pytest.raises(AgentConfigError, match=r"asynchronous must be True or False, got 'yes'"):
        AsyncRegularizedEvolution(asynchronous="yes")
    with pytest.raises(AgentConfigError, match=r"batch_size must be a positive integer or None.*got -1"):
        ParallelRandomSearch(batch_size=-1)


def test_a_table_env_runs_one_evaluation_at_a_time_and_submits_done_futures(make_env):
    env = make_env()
    assert env.unwrapped.parallelism == 1
    future = env.unwrapped.submit((0, 1, 2, 3, 0, 1))
    assert future.done()
    env.unwrapped.prefetch([(0, 1, 2, 3, 0, 1)])  # a precomputed env has nothing to do
    assert env.unwrapped.num_evaluations == 0


def test_a_prefetching_vector_env_steps_as_a_sync_vector_env_and_prefetches_finished_architectures(tiny_topology):
    from natsbench_gym.envs.vector import make_vector_env

    plain = gym.vector.SyncVectorEnv([lambda: gym.make("NATSBench-Topology-v0", benchmark=tiny_topology)] * 3)
    envs = make_vector_env("NATSBench-Topology-v0", 3, benchmark=tiny_topology)
    asked: list = []
    envs.env.envs[0].unwrapped.prefetch = asked.append
    obs_a, _ = plain.reset(seed=0)
    obs_b, _ = envs.reset(seed=0)
    actions = [[0, 1, 2], [3, 0, 1], [1, 1, 1], [2, 3, 0], [4, 4, 4], [0, 2, 3]]
    for step, action in enumerate(actions):
        a, b = plain.step(action), envs.step(action)
        assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
        assert asked == ([] if step < 5 else [[(0, 3, 1, 2, 4, 0), (1, 0, 1, 3, 4, 2), (2, 1, 1, 0, 4, 3)]])
    with pytest.raises(natsbench_gym.errors.InvalidConfigError, match=r"num_envs=0; expected a positive integer"):
        make_vector_env("NATSBench-Topology-v0", 0)


def test_ppo_with_episodes_side_by_side_is_reproducible_and_keeps_the_budget(make_env):
    pytest.importorskip("stable_baselines3")
    from agents.sb3 import SB3Agent

    first = SB3Agent("ppo", seed=0, episodes_per_update=4, n_envs=2).search(make_env(), budget=13)
    again = SB3Agent("ppo", seed=0, episodes_per_update=4, n_envs=2).search(make_env(), budget=13)
    assert len(first.history) == 13
    assert history(first) == history(again)
    with pytest.raises(AgentConfigError, match=r"n_envs must be a positive integer, got 0"):
        SB3Agent("ppo", n_envs=0)
    with pytest.raises(AgentConfigError, match=r"n_envs=2 with a train_time budget"):
        SB3Agent("ppo", seed=0, n_envs=2).search(make_env(), budget=SearchBudget(evaluations=None, train_time=1e4))
