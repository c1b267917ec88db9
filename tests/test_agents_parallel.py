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

    agent = SB3Agent("ppo", seed=0, episodes_per_update=4, n_envs=2)
    env = make_env()
    first = agent.search(env, budget=13)
    assert [sub.unwrapped.benchmark for sub in agent.model.get_env().venv.envs] == [env.unwrapped.benchmark] * 2
    again = SB3Agent("ppo", seed=0, episodes_per_update=4, n_envs=2).search(make_env(), budget=13)
    assert len(first.history) == 13
    assert history(first) == history(again)
    with pytest.raises(AgentConfigError, match=r"n_envs must be a positive integer, got 0"):
        SB3Agent("ppo", n_envs=0)
    with pytest.raises(AgentConfigError, match=r"n_envs=2 with a train_time budget"):
        SB3Agent("ppo", seed=0, n_envs=2).search(make_env(), budget=SearchBudget(evaluations=None, train_time=1e4))


# --- MONAS through a Gymnasium vector env -----------------------------------------------------------
def decisions(result):
    """The history without ``total_train_time`` (each sub-env counts its own)."""
    return [repr({k: v for k, v in e.to_dict().items() if k != "total_train_time"}) for e in result.history]


@pytest.mark.parametrize(("n_envs", "episodes_per_update"), [(2, 4), (3, 4), (4, 4)])
def test_monas_with_episodes_side_by_side_is_reproducible_and_makes_the_serial_searchs_decisions(
    make_env, n_envs, episodes_per_update
):
    pytest.importorskip("torch")
    from agents.monas import MONAS

    def run(n, seed=0):
        return MONAS(seed=seed, episodes_per_update=episodes_per_update, n_envs=n).search(make_env(), budget=23)

    first, again, serial = run(n_envs), run(n_envs), run(1)
    assert len(first.history) == 23  # 23 is no multiple of the rounds: the last one is cut to the budget
    assert history(first) == history(again)
    assert decisions(first) == decisions(serial)  # same draws, rewards and updates: only the envs differ
    assert decisions(run(n_envs, seed=1)) != decisions(first)


def test_monas_side_by_side_steps_a_vector_env_and_keeps_the_budget_exact(make_env, monkeypatch):
    pytest.importorskip("torch")
    import natsbench_gym.envs.vector as vector
    from agents.base import SearchCallback
    from agents.monas import MONAS

    rounds: list[list[tuple[int, ...]]] = []
    benchmarks: set[int] = set()
    step = vector.PrefetchingVectorEnv.step

    def spy(self, actions):
        before = [sub.unwrapped.num_evaluations for sub in self.env.envs]
        out = step(self, actions)
        finished = [sub.unwrapped.num_evaluations - n for sub, n in zip(self.env.envs, before, strict=True)]
        if any(finished):
            assert finished == [1] * self.num_envs  # every sub-env finishes its episode on the same step
            rounds.append([tuple(sub.unwrapped.encoding) for sub in self.env.envs])
            benchmarks.update(id(sub.unwrapped.benchmark) for sub in self.env.envs)
        return out

    monkeypatch.setattr(vector.PrefetchingVectorEnv, "step", spy)
    env = make_env()
    result = MONAS(seed=4, episodes_per_update=6, n_envs=4).search(env, budget=13)
    # updates of 6 episodes in rounds of 4 and 2; the last round holds only the 13th
    assert [len(r) for r in rounds] == [4, 2, 4, 2, 1]
    assert [e for r in rounds for e in r] == [e.encoding for e in result.history]
    assert len(result.history) == 13 and env.unwrapped.num_evaluations == 5  # the search's env is sub-env 0
    assert benchmarks == {id(env.unwrapped.benchmark)}  # the copies share the search's benchmark
    # free repeats (a cold policy resamples): the search stops at the 9th new architecture, or when the
    # free repeats run out (max_repeats), exactly as the serial search does; nothing is built past that
    for temperature, max_repeats, stop in ((0.01, None, "new"), (0.003, None, "repeats"), (0.003, 7, "repeats")):
        budget = SearchBudget(evaluations=9, count_repeats=False, max_repeats=max_repeats)
        rounds.clear()
        free = MONAS(seed=4, episodes_per_update=4, n_envs=4, temperature=temperature).search(make_env(), budget=budget)
        serial = MONAS(seed=4, episodes_per_update=4, temperature=temperature).search(make_env(), budget=budget)
        assert decisions(free) == decisions(serial)
        assert [e for r in rounds for e in r] == [e.encoding for e in free.history]
        indices = [e.index for e in free.history]
        repeats = len(indices) - len(set(indices))
        if stop == "new":
            assert len(set(indices)) == 9 and indices[-1] not in indices[:-1] and repeats > 0
        else:
            assert len(set(indices)) < 9 and repeats == budget.max_free_repeats and indices[-1] in indices[:-1]

    class StopAt(SearchCallback):
        def _on_evaluation(self, evaluation):
            return evaluation.step < 6

    stopped = MONAS(seed=4, episodes_per_update=4, n_envs=4).search(make_env(), budget=20, callback=StopAt())
    assert len(stopped.history) == 6


def test_monas_n_envs_typed_errors(make_env):
    pytest.importorskip("torch")
    from agents.monas import MONAS

    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(AgentConfigError, match=rf"n_envs must be a positive integer, got {bad!r}; e.g. the executor's workers"):
            MONAS(n_envs=bad, episodes_per_update=4)
    with pytest.raises(AgentConfigError, match=r"n_envs=4 > episodes_per_update=2: .*MONAS\(n_envs=4, episodes_per_update=4\)"):
        MONAS(n_envs=4, episodes_per_update=2)
    assert make_agent("monas", n_envs=2, episodes_per_update=2).n_envs == 2
    with pytest.raises(AgentConfigError, match=r"n_envs=2 with a train_time budget"):
        MONAS(seed=0, n_envs=2, episodes_per_update=2).search(make_env(), budget=SearchBudget(evaluations=None, train_time=1e4))
    from natsbench_gym.envs.topology import NATSBenchTopologyEnv

    plain = NATSBenchTopologyEnv(benchmark=make_env().unwrapped.benchmark)
    with pytest.raises(AgentConfigError, match=r"n_envs=2 copies the env from its spec, and this env has none"):
        MONAS(seed=0, n_envs=2, episodes_per_update=2).search(plain, budget=5)


def test_personalized_monas_side_by_side_rewards_every_sub_envs_episode_with_the_learned_metric(make_env):
    pytest.importorskip("torch")
    import numpy as np

    from agents.monas import MONAS
    from agents.personalization import Personalization, metrics_of
    from reward_models import SyntheticUser

    def run():
        env = make_env()
        user = SyntheticUser("params", env.unwrapped.context)  # the env's own reward is accuracy
        p = Personalization(user, schedule="one-shot", num_architectures=5)
        return env, MONAS(seed=5, episodes_per_update=4, n_envs=2, personalization=p).search(env, budget=25)

    env, first = run()
    _, again = run()
    assert history(first) == history(again) and first.scores == again.scores and len(first.history) == 25
    model = first.info["learned_metric"]
    expected = model.score_many(metrics_of(first.history), env.unwrapped.context)
    # after the 5 random architectures of the first round, the copies reward with the learned model too
    np.testing.assert_allclose(first.rewards()[5:], expected[5:], rtol=1e-9, atol=1e-9)


def test_ppo_side_by_side_copies_follow_the_reward_model_of_each_personalization_round(make_env):
    pytest.importorskip("stable_baselines3")
    from agents.personalization import Personalization
    from agents.sb3 import SB3Agent
    from reward_models import SyntheticUser

    env = make_env()
    p = Personalization(SyntheticUser("params", env.unwrapped.context), num_comparisons=12, num_architectures=5)
    agent = SB3Agent("ppo", seed=0, episodes_per_update=4, n_envs=2, personalization=p)
    before_final_round = {}
    finish = agent._finish

    def snapshot():  # the model of the last round during the search (the final one comes after it)
        before_final_round["model"] = env.unwrapped.reward_model
        finish()

    agent._finish = snapshot
    result = agent.search(env, budget=40)
    # rounds at 40 % and 70 % of the budget replaced the model the copy was made with
    assert [r["at"] for r in result.info["rounds"]] == [0.0, 0.4, 0.7, 1.0]
    copies = agent.model.get_env().venv.envs[1:]
    assert all(sub.unwrapped.reward_model is before_final_round["model"] for sub in copies)
