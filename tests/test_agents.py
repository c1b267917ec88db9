"""Search agents: one interface, budgets, callbacks, determinism, and what each algorithm promises.

Fast tests run on the synthetic tables (``tiny_tables``); the real-data tests need ``NATSBENCH_DATA``.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from agents.base import Evaluation, SearchBudget, SearchCallback, SearchResult, TensorBoardCallback
from agents.evolution import PersonalizedEvolution, RegularizedEvolution
from agents.lemonade import LEMONADE
from agents.random_search import RandomSearch
from natsbench_gym.types import Metric

ROOT = Path(__file__).resolve().parents[1]


def make_monas(seed, **kw):
    from agents.monas import MONAS

    return MONAS(seed=seed, **kw)


def make_ppo(seed, **kw):
    from agents.sb3 import SB3Agent

    return SB3Agent("ppo", seed=seed, episodes_per_update=4, **kw)


AGENTS = {
    "random": lambda seed: RandomSearch(seed=seed),
    "re": lambda seed: RegularizedEvolution(population_size=6, sample_size=3, seed=seed),
    "lemonade": lambda seed: LEMONADE(population_size=6, num_children=3, seed=seed),
    "lemonade_prescreen": lambda seed: LEMONADE(population_size=6, num_children=3, num_proposals=12, seed=seed),
    "monas": make_monas,
    "monas_rank": lambda seed: make_monas(seed, reward_shaping="rank"),
    "ppo": make_ppo,
    "ppo_rank": lambda seed: make_ppo(seed, reward_shaping="rank"),
}


@pytest.fixture(scope="module")
def tiny_topology(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def make_env(tiny_topology):
    def make(**kwargs):
        kwargs.setdefault("budget", 200)
        return gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, **kwargs)

    return make


def histories_equal(a: SearchResult, b: SearchResult) -> bool:
    """Field by field, nan equal to nan (metrics the data lacks are nan)."""
    return [repr(e.to_dict()) for e in a.history] == [repr(e.to_dict()) for e in b.history]


# --- the interface -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(AGENTS))
def test_same_seed_gives_the_same_history(name, make_env):
    first = AGENTS[name](3).search(make_env(), budget=30)
    again = AGENTS[name](3).search(make_env(), budget=30)
    other = AGENTS[name](4).search(make_env(), budget=30)
    assert len(first.history) == 30
    assert histories_equal(first, again)
    assert not histories_equal(first, other)
    assert first.best.step == max(first.history, key=lambda e: e.reward).step


@pytest.mark.parametrize("name", list(AGENTS))
def test_budget_in_evaluations_and_steps(name, make_env):
    env = make_env()
    result = AGENTS[name](0).search(env, budget=SearchBudget(evaluations=17))
    assert len(result.history) == 17
    assert [e.step for e in result.history] == list(range(1, 18))
    assert env.unwrapped.num_evaluations == 17  # every evaluation went through the env, none beside it


@pytest.mark.parametrize("name", list(AGENTS))
def test_budget_in_simulated_training_time(name, make_env):
    env = make_env()
    env.unwrapped.total_train_time = 1000.0  # time spent before the search does not count
    budget = 3_000.0  # synthetic training times are 100 + code / 10 s (up to ~1,660 s)
    result = AGENTS[name](0).search(env, budget=SearchBudget(evaluations=None, train_time=budget))
    spent = [e.total_train_time - 1000.0 for e in result.history]
    assert spent[-1] >= budget > spent[-2]  # the last evaluation crossed the budget, none came after
    assert result.history[-1].total_train_time == pytest.approx(env.unwrapped.total_train_time)


@pytest.mark.parametrize("name", list(AGENTS))
def test_free_repeats_spend_the_budget_on_distinct_architectures(name, make_env):
    budget = SearchBudget(evaluations=40, count_repeats=False)
    env = make_env()
    result = AGENTS[name](2).search(env, budget=budget)
    indices = [e.index for e in result.history]
    assert len(set(indices)) == 40 and indices[-1] not in indices[:-1]  # stopped on the 40th new one
    assert env.unwrapped.num_evaluations == len(result.history)  # repeats still go through the env
    again = AGENTS[name](2).search(make_env(), budget=budget)
    assert histories_equal(result, again)


class Stubborn(RandomSearch):
    """Proposes one architecture over and over."""

    name = "stubborn"

    def _search(self):
        while True:
            self.evaluate((1, 2, 3, 4, 0, 1))


def test_free_repeats_are_capped_and_counted_apart(make_env):
    result = Stubborn(seed=0).search(make_env(), budget=SearchBudget(evaluations=5, count_repeats=False, max_repeats=7))
    assert len(result.history) == 8  # 1 architecture + 7 free repeats, then the search stops
    assert len(Stubborn(seed=0).search(make_env(), budget=5).history) == 5  # counted repeats: the old protocol
    assert SearchBudget(evaluations=30, count_repeats=False).max_free_repeats == 300
    with pytest.raises(ValueError, match="max_repeats must be >= 0, got -1"):
        SearchBudget(max_repeats=-1)


def test_free_repeats_cost_no_simulated_training_time(make_env):
    env = make_env()
    one = Stubborn(seed=0).search(env, budget=SearchBudget(evaluations=None, train_time=1e9, count_repeats=False,
                                                           max_repeats=3))
    assert len(one.history) == 4 and env.unwrapped.total_train_time == pytest.approx(4 * one.history[0].train_time)
    budget = 3_000.0  # the env's clock counts repeats; the budget counts each architecture's training once
    result = RegularizedEvolution(4, 2, seed=0).search(
        make_env(), budget=SearchBudget(evaluations=None, train_time=budget, count_repeats=False))
    first_times, seen = [], set()
    for e in result.history:
        if e.index not in seen:
            seen.add(e.index)
            first_times.append(e.train_time)
    assert sum(first_times) >= budget > sum(first_times[:-1])


def test_free_repeats_are_refused_on_a_noisy_env(make_env):
    env = make_env()
    env.unwrapped.noise = True  # a repeat would draw a new seed's accuracy: a new training
    with pytest.raises(ValueError, match="noisy env"):
        RandomSearch(seed=0).search(env, budget=SearchBudget(10, count_repeats=False))


class StopAfter(SearchCallback):
    def __init__(self, n):
        self.n, self.seen, self.started, self.ended = n, [], False, None

    def on_search_start(self, agent, env):
        self.started = True

    def _on_evaluation(self, evaluation):
        self.seen.append(evaluation)
        return len(self.seen) < self.n

    def on_search_end(self, result):
        self.ended = result


@pytest.mark.parametrize("name", list(AGENTS))
def test_a_callback_can_stop_the_search(name, make_env):
    callback = StopAfter(7)
    result = AGENTS[name](0).search(make_env(), budget=50, callback=callback)
    assert len(result.history) == 7 and [e.step for e in callback.seen] == [e.step for e in result.history]
    assert callback.started and callback.ended is result


def test_tensorboard_callback_writes_events(make_env, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = RegularizedEvolution(4, 2, seed=0).search(make_env(), budget=12, callback=[TensorBoardCallback(tmp_path, "re")])
    events = EventAccumulator(str(tmp_path / "re")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"search/reward", "search/best_reward", "search/best_test_accuracy", "search/total_train_time"} <= scalars
    assert [s.step for s in events.Scalars("search/reward")] == list(range(1, 13))
    assert events.Scalars("search/best_reward")[-1].value == pytest.approx(result.best.reward)


def test_importing_agents_does_not_import_torch():
    code = (
        "import sys, agents; from agents import RandomSearch, RegularizedEvolution, LEMONADE, Personalization; "
        "assert 'torch' not in sys.modules, 'torch was imported'; from agents import MONAS; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- results -----------------------------------------------------------------------------------------
def _ev(step, reward, acc, params, index=None):
    return Evaluation(step, f"a{step}", step if index is None else index, (0,) * 6,
                      {"test_accuracy": acc, "params": params}, reward, 1.0, float(step))


def test_pareto_front_of_a_hand_made_history():
    history = [
        _ev(1, 0.1, 90.0, 1.0),   # front
        _ev(2, 0.2, 85.0, 0.5),   # front
        _ev(3, 0.3, 84.0, 0.6),   # dominated by 2
        _ev(4, 0.4, 92.0, 2.0),   # front
        _ev(5, 0.5, 89.0, 1.5),   # dominated by 1
        _ev(6, 0.6, 92.0, 2.0, index=4),  # same architecture as 4: listed once
        _ev(7, 0.7, math.nan, 0.1),  # no accuracy: left out
    ]
    result = SearchResult(history, "hand")
    assert [e.step for e in result.pareto_front(("test_accuracy", "params"))] == [1, 2, 4]
    assert [e.step for e in result.pareto_front(("params",))] == [7]  # it has params, only accuracy is missing
    assert result.best.step == 7 and list(result.best_so_far()) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def test_result_scores_replace_rewards_for_best_and_curves():
    history = [_ev(1, 0.9, 90.0, 1.0), _ev(2, 0.1, 85.0, 0.5), _ev(3, 0.5, 80.0, 0.5)]
    result = SearchResult(history, "x", scores=[0.0, 2.0, 1.0])
    assert result.best.step == 2
    assert list(result.best_so_far()) == [0.0, 2.0, 2.0]
    assert list(result.best_so_far("test_accuracy")) == [90.0, 85.0, 85.0]
    with pytest.raises(ValueError, match="scores has 2 entries for 3 evaluations"):
        SearchResult(history, "x", scores=[0.0, 1.0])


# --- random search -----------------------------------------------------------------------------------
def test_random_search_never_repeats_and_respects_constraints(make_env):
    env = make_env(forbidden_ops=("none",), max_params=0.1)
    result = RandomSearch(seed=0).search(env, budget=200)
    assert len({e.index for e in result.history}) == 200
    assert all(0 not in e.encoding and e.metrics["params"] <= 0.1 for e in result.history)


# --- regularized evolution ---------------------------------------------------------------------------
def test_regularized_evolution_ages_its_population(make_env):
    agent = RegularizedEvolution(population_size=5, sample_size=5, seed=1)
    sizes = []

    class Watch(SearchCallback):
        def _on_evaluation(self, evaluation):
            sizes.append(len(agent.population))

    result = agent.search(make_env(), budget=40, callback=Watch())
    # The population is always the last p evaluated (the oldest leaves, whatever its fitness) ...
    assert [e.step for e in agent.population] == [e.step for e in result.history[-5:]]
    assert sizes[5:] == [5] * 35
    # ... and with s = p every child is a one-decision mutation of the fittest of the previous p.
    for i in range(5, 40):
        parent = max(result.history[i - 5 : i], key=lambda e: e.reward)
        child = result.history[i].encoding
        assert sum(a != b for a, b in zip(parent.encoding, child, strict=True)) == 1


def test_regularized_evolution_beats_random_search_on_the_tiny_table(make_env):
    # Accuracy grows with the code on the synthetic table, so hill-climbing must pay off.
    re = np.mean([RegularizedEvolution(10, 5, seed=s).search(make_env(), 100).best.reward for s in range(5)])
    rs = np.mean([RandomSearch(seed=s).search(make_env(), 100).best.reward for s in range(5)])
    assert re > rs


def test_regularized_evolution_checks_its_arguments():
    with pytest.raises(ValueError, match="sample_size must be in 1..population_size=4, got 5"):
        RegularizedEvolution(4, 5)
    with pytest.raises(ValueError, match="population_size must be >= 1"):
        RegularizedEvolution(0, 0)
    with pytest.raises(ValueError, match="needs a Personalization"):
        PersonalizedEvolution(None)


# --- personalization (Alg. 1) ------------------------------------------------------------------------
def personalization_for(env, metric="accuracy", **kw):
    from agents.personalization import Personalization
    from reward_models import SyntheticUser

    return Personalization(SyntheticUser(metric, env.unwrapped.context), **kw)


PERSONALIZED = {
    "re": lambda seed, p: PersonalizedEvolution(p, population_size=8, sample_size=4, seed=seed),
    "random": lambda seed, p: RandomSearch(seed=seed, personalization=p),
    "monas": lambda seed, p: make_monas(seed, personalization=p),
    "ppo": lambda seed, p: make_ppo(seed, personalization=p),
}


@pytest.mark.parametrize("name", list(PERSONALIZED))
def test_personalized_search_is_reproducible_and_counts_every_evaluation(name, make_env):
    def run(seed):
        env = make_env()
        return env, PERSONALIZED[name](seed, personalization_for(env, schedule="one-shot", num_architectures=5)).search(env, budget=25)

    env, first = run(5)
    _, again = run(5)
    _, other = run(6)
    assert histories_equal(first, again) and first.scores == again.scores
    assert not histories_equal(first, other)
    assert len(first.history) == 25 and env.unwrapped.num_evaluations == 25  # judging evaluates nothing
    model = first.info["learned_metric"]
    assert env.unwrapped.reward_model is model
    assert len(first.info["comparisons"]) == 10
    judged = {i for c in first.info["comparisons"] for i in c.indices}
    assert judged == {e.index for e in first.history[:5]}  # 10 pairs = every pair of the first 5
    # Every score is the learned metric's: re-scored before it was learned, the env's reward after.
    from agents.personalization import metrics_of

    expected = model.score_many(metrics_of(first.history), env.unwrapped.context)
    np.testing.assert_allclose(first.scores, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(first.rewards()[8:], expected[8:], rtol=1e-9, atol=1e-9)
    assert first.best.step == int(np.argmax(expected)) + 1


def test_personalized_evolution_follows_the_users_preference(make_env):
    """On the synthetic table accuracy and params both grow with the code: a user who wants few
    parameters and one who wants accuracy must send evolution to opposite ends of the space."""

    def found(metric):
        env = make_env(reward_model="accuracy")  # the env's own reward is replaced by the learned one
        p = personalization_for(env, metric, num_architectures=None)
        return PersonalizedEvolution(p, 10, 5, seed=0).search(env, 60).best.metrics["params"]

    assert found("params") < 0.02 < 0.13 < found("accuracy")


def test_personalized_evolution_with_a_stopped_search_learns_nothing(make_env):
    env = make_env()
    result = PersonalizedEvolution(personalization_for(env), 8, 4, seed=0).search(env, 50, callback=StopAfter(3))
    assert len(result.history) == 3 and "learned_metric" not in result.info and result.scores is None
    assert env.unwrapped.reward_model.name == "accuracy"


def test_personalization_checks_its_arguments(make_env):
    with pytest.raises(ValueError, match="num_architectures must be >= 2"):
        personalization_for(make_env(), num_architectures=1)
    with pytest.raises(ValueError, match="num_comparisons must be >= 1"):
        personalization_for(make_env(), num_comparisons=0)


# --- LEMONADE ----------------------------------------------------------------------------------------
def test_lemonade_keeps_the_non_dominated_set(make_env, tiny_topology):
    agent = LEMONADE(population_size=8, num_children=4, seed=0)
    result = agent.search(make_env(), budget=60)
    objectives = agent.objectives()
    assert objectives[0] is Metric.VALID_ACCURACY and Metric.PARAMS in objectives and Metric.FLOPS in objectives

    def vector(e):
        return np.array([-e.metrics[m.value] if m.higher_is_better else e.metrics[m.value] for m in objectives])

    def dominates(a, b):
        return bool(np.all(a <= b) and np.any(a < b))

    front_ids = {e.index for e in agent.front}
    for e in result.history:
        dominated = any(dominates(vector(o), vector(e)) for o in result.history)
        assert (e.index in front_ids) == (not dominated)
    assert [e.step for e in result.info["front"]] == [e.step for e in agent.front]
    assert 0.0 < result.info["hypervolume"] <= 1.0


def test_lemonade_prefers_parents_in_sparse_regions(make_env):
    agent = LEMONADE(seed=0)
    agent.env = make_env()
    crowd = [_ev(i, 0.0, 50.0 + i, 1.0 + 0.001 * i) for i in range(1, 6)]
    crowd = [Evaluation(e.step, e.arch, e.index, e.encoding, {**e.metrics, "valid_accuracy": 50.0 + e.step,
             "flops": 10.0 + 0.01 * e.step, "latency": 1.0}, 0.0, 1.0, 1.0) for e in crowd]
    loner = Evaluation(6, "a6", 6, (0,) * 6, {"valid_accuracy": 40.0, "params": 5.0, "flops": 50.0, "latency": 1.0},
                       0.0, 1.0, 1.0)
    probs = agent.parent_probabilities([*crowd, loner])
    assert probs.sum() == pytest.approx(1.0)
    assert probs[-1] > 3 * probs[:-1].max()


def test_lemonade_prescreens_children_on_training_free_metrics(make_env):
    env = make_env()
    base = env.unwrapped
    asked = []
    original = base.training_free_metrics

    def spy(archs):
        asked.append([tuple(a) for a in archs])
        return original(archs)

    base.training_free_metrics = spy
    agent = LEMONADE(population_size=6, num_children=3, num_proposals=12, seed=0)
    result = agent.search(env, budget=36)
    assert len(asked) == 10 and all(len(a) == 12 for a in asked)  # one pre-screen per generation of 3
    assert base.num_evaluations == 36  # pre-screening evaluated nothing
    for g, proposals in enumerate(asked):
        children = [e.encoding for e in result.history[6 + 3 * g : 9 + 3 * g]]
        assert all(c in proposals for c in children)
        assert len(set(children)) == 3  # distinct, and new while new proposals remain
    # Without pre-screening the env is never asked, and the history is the one before the stage existed.
    base.training_free_metrics = spy
    asked.clear()
    plain = LEMONADE(population_size=6, num_children=3, seed=0).search(make_env(), budget=36)
    assert asked == [] and histories_equal(plain, LEMONADE(6, 3, num_proposals=3, seed=0).search(make_env(), 36))
    assert not histories_equal(plain, result)


def test_lemonade_accepts_children_in_sparse_regions(make_env):
    agent = LEMONADE(seed=0)
    agent.env = make_env()
    front = [Evaluation(i, f"a{i}", i, (0,) * 6, {"valid_accuracy": 50.0 + i, "params": 1.0 + 0.01 * i,
                        "flops": 10.0 + 0.1 * i, "latency": 1.0 + 0.01 * i}, 0.0, 1.0, 1.0) for i in range(1, 6)]
    children = np.array([[1.02, 10.2], [1.03, 10.3], [8.0, 90.0]])  # params, FLOPs (the tiny table has no latency)
    assert [m.value for m in agent.objectives()[1:]] == ["params", "flops"]
    probs = agent.acceptance_probabilities(front, children)
    assert probs.sum() == pytest.approx(1.0) and probs[2] > 10 * probs[:2].max()


def test_lemonade_checks_its_arguments():
    with pytest.raises(ValueError, match="num_proposals must be >= num_children=5, got 3"):
        LEMONADE(num_children=5, num_proposals=3)
    with pytest.raises(ValueError, match="train_time needs training"):
        LEMONADE(num_proposals=20, cheap_objectives=("params", "train_time"))
    LEMONADE(cheap_objectives=("params", "train_time"))  # fine without pre-screening


# --- MONAS -------------------------------------------------------------------------------------------
def test_monas_reward_mixes_accuracy_and_cost(tiny_topology):
    from agents.monas import MONASReward
    from natsbench_gym.rewards import ScoringContext

    ctx = ScoringContext.create(tiny_topology, "cifar10", 200)
    reward = MONASReward(alpha=0.75, cost="params")
    stats_acc, stats_params = ctx.stats(Metric.VALID_ACCURACY), ctx.stats(Metric.PARAMS)
    metrics = {Metric.VALID_ACCURACY: np.array([stats_acc.max, stats_acc.min]), Metric.PARAMS: np.array([stats_params.max, stats_params.min])}
    np.testing.assert_allclose(reward.score_many(metrics, ctx), [0.75 - 0.25, 0.0])
    with pytest.raises(ValueError, match="must be a cost"):
        MONASReward(cost=Metric.TEST_ACCURACY)
    env = gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, budget=200, reward_model=MONASReward(cost=Metric.FLOPS))
    assert make_monas(0).search(env, 10).best.reward <= 0.5


def test_monas_learns_on_the_tiny_table(make_env):
    """On the synthetic table the reward grows with the code; the controller must climb it."""
    result = make_monas(0, learning_rate=0.02).search(make_env(), 300)
    rewards = result.rewards()
    assert rewards[-50:].mean() > rewards[:50].mean() + 0.1


def test_monas_temperature_flattens_the_policy_it_samples_and_trains(make_env):
    import torch

    from agents.monas import Controller

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        hot = Controller(6, 5, 16, temperature=4.0)
    for head in hot.heads:  # make the untrained heads opinionated
        torch.nn.init.normal_(head.bias, std=3.0)
    cold = Controller(6, 5, 16)
    cold.load_state_dict(hot.state_dict())  # the same weights, temperature 1
    actions = torch.tensor([cold.sample(np.random.default_rng(i)) for i in range(8)])
    log_hot, ent_hot = hot(actions)
    log_cold, ent_cold = cold(actions)
    assert (ent_hot > ent_cold).all()  # flatter under temperature, for the log-probs the gradient uses too
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        make_monas(0, temperature=0)
    a = make_monas(1, temperature=1.0).search(make_env(), 12)
    b = make_monas(1).search(make_env(), 12)
    assert histories_equal(a, b) and not histories_equal(a, make_monas(1, temperature=3.0).search(make_env(), 12))


# --- reward shaping ----------------------------------------------------------------------------------
def test_rank_shaping_ranks_among_distinct_architectures():
    from agents.shaping import RankShaping

    shaping = RankShaping()
    assert shaping(7, 0.2) == 0.5  # alone: the middle
    assert shaping(8, 0.9) == 0.75  # best of two
    assert shaping(9, 0.1) == pytest.approx(1 / 6)  # worst of three
    for _ in range(50):  # a repeat is ranked, not added: the scale does not collapse onto it
        assert shaping(8, 0.9) == pytest.approx(5 / 6)
    assert len(shaping) == 3
    assert shaping(10, 0.9) == 0.75  # a tie: (2 below + half of the 2 tied) / 4
    assert shaping(11, math.nan) == 0.0 and len(shaping) == 4
    # scale-free: an affine change of the rewards gives the same shaped rewards
    a, b = RankShaping(), RankShaping()
    rewards = np.random.default_rng(0).normal(size=30)
    assert [a(i, r) for i, r in enumerate(rewards)] == [b(i, 1e-3 * r + 0.9) for i, r in enumerate(rewards)]


@pytest.mark.parametrize("name", ["monas", "ppo"])
def test_rank_shaping_trains_the_policy_but_the_history_keeps_the_envs_reward(name, make_env):
    agent = AGENTS[f"{name}_rank"](0)
    result = agent.search(make_env(), 40)
    env = make_env()
    for ev in result.history[-10:]:  # the recorded rewards are the env's own, not ranks
        env.reset(seed=0)
        for action in ev.encoding:
            _, reward, terminated, _, _ = env.step(action)
        assert terminated and reward == pytest.approx(ev.reward)
    assert not histories_equal(result, AGENTS[name](0).search(make_env(), 40))  # the policy saw other rewards
    make = make_monas if name == "monas" else make_ppo
    with pytest.raises(ValueError, match="unknown reward_shaping 'quantile'; expected one of: none, rank"):
        make(0, reward_shaping="quantile")


def test_monas_with_rank_shaping_learns_on_the_tiny_table(make_env):
    result = make_monas(0, learning_rate=0.02, reward_shaping="rank").search(make_env(), 300)
    rewards = result.rewards()
    assert rewards[-50:].mean() > rewards[:50].mean() + 0.1


def test_monas_leaves_torch_global_state_alone(make_env):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    make_monas(0).search(make_env(), 5)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


# --- SB3 ---------------------------------------------------------------------------------------------
def test_sb3_agent_with_masks_respects_constraints(make_env):
    from agents.sb3 import SB3Agent

    env = make_env(forbidden_ops=("none", "skip_connect"))
    result = SB3Agent("maskable_ppo", seed=0, episodes_per_update=4).search(env, 25)
    assert len(result.history) == 25
    assert all(min(e.encoding) >= 2 for e in result.history)


# --- real data -----------------------------------------------------------------------------------------
def test_evolution_and_rl_beat_random_search_on_cifar100(topology_bench):
    """Mean 200-epoch test accuracy of the architecture found in 100 evaluations, 10 seeds each."""

    def found(make):
        accs = []
        for seed in range(10):
            env = gym.make("NATSBench-Topology-v0", benchmark=topology_bench, dataset="cifar100", budget=200)
            accs.append(make(seed).search(env, 100).best.metrics["test_accuracy"])
        return float(np.mean(accs))

    random = found(lambda s: RandomSearch(seed=s))
    re = found(lambda s: RegularizedEvolution(10, 5, seed=s))
    assert re > random + 0.5, f"RE {re:.2f} vs random {random:.2f}"
    assert random > 70.0  # the best of 100 random cells is already in the top few percent


# --- the reproduce-figs45 job ----------------------------------------------------------------------------
def load_script(name: str):
    import importlib

    return importlib.import_module(f"natsbench_gym_cli.{name}")


def test_reproduce_figs45_script_on_the_tiny_table(tiny_tables, tmp_path, capsys):
    script = load_script("reproduce_figs45")
    argv = ["--algos", "re,lemonade,random", "--variants", "predefined", "--datasets", "cifar10,cifar100",
            "--seeds", "3", "--evaluations", "15", "--workers", "1", "--data", str(tiny_tables), "--out", str(tmp_path)]
    assert script.main(argv) == 0
    for name in ("runs.csv", "curves.csv", "summary.csv", "summary.md", "fig4.png", "fig5.png", "timing.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    import csv

    summary = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert len(summary) == 2 * 2 * 3  # metrics x datasets x algorithms
    assert all(row["evaluations"] == "15" and row["seeds"] == "3" for row in summary)
    assert all(0.0 < float(row["score_mean"]) <= 100.0 and 0.0 < float(row["percentile_mean"]) <= 100.0 for row in summary)
    # The paper's ratio of raw test accuracies is never below the min-max normalised score (h_accuracy).
    for row in summary:
        assert 0.0 < float(row["test_ratio_mean"]) <= 100.0
        if row["metric"] == "accuracy":
            assert float(row["test_ratio_mean"]) >= float(row["score_mean"]) - 1e-9
    runs = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(runs) == 2 * 2 * 3 * 3 * 15
    md = (tmp_path / "summary.md").read_text()
    assert "### h_accuracy after 15 evaluations" in md and "| RE | predefined |" in md and "[99.7]" in md
    assert md.count("Test-accuracy ratio = test accuracy of the found architecture") == 2
    assert md.count("| algorithm | variant | cifar10 | cifar100 |") == 2 * 5  # score, ratio, search, front, regret
    assert md.count("Search score = h on the accuracy the search read") == 2
    assert md.count("Front of the evaluated architectures: hypervolume") == 2
    assert all(0.0 < float(row["search_score_mean"]) <= 100.0 for row in summary)
    assert all(0.0 < float(row["front_hypervolume_mean"]) <= 100.0 for row in summary)
    assert "h_accuracy after 15 evaluations" in capsys.readouterr().out
    # What the score can reach: the search-best architecture's score, and how many reach 99.5 % / 99 %.
    ceilings = list(csv.DictReader(open(tmp_path / "ceilings.csv")))
    assert [(r["metric"], r["dataset"]) for r in ceilings] == [
        (m, d) for m in ("accuracy", "weighted") for d in ("cifar10", "cifar100")]
    for r in ceilings:
        assert 0.0 < float(r["search_best_score"]) <= 100.0
        assert 1 <= int(r["archs_at_least_99.5"]) <= int(r["archs_at_least_99"]) <= int(r["archs"])
        assert 0.0 < float(r["random_search_expected"]) < 100.0 and r["evaluations"] == "15"
    assert "What the score can reach" in md and "| h_weighted | " in md


def test_reproduce_figs45_scorer_counts_and_ceiling(tiny_tables):
    """count_at_least against a direct count, and the search-best score on test accuracy is 100."""
    script = load_script("reproduce_figs45")
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    scorer = script.Scorer(bench, "accuracy", "cifar10")
    scores = scorer.measures(np.arange(scorer.size))["score"]
    for threshold in (0.0, 50.0, 99.0, 99.5, 100.0):
        assert scorer.count_at_least(threshold) == int(np.sum(scores >= threshold - 1e-9))
    (row,) = script.ceilings(str(tiny_tables), ["accuracy"], ["cifar10"], "test")
    assert row["search_best_score"] == pytest.approx(100.0) and row["archs"] == scorer.size


def test_reproduce_figs45_random_search_expectation_is_exact(random_metrics_bench):
    """The closed form against its limits (k = 1: the mean score; k = all: the search-best group) and
    against a Monte Carlo of random search on a small space with ties under the search metric."""
    script = load_script("reproduce_figs45")
    scorer = script.Scorer(random_metrics_bench, "accuracy", "cifar100")
    score = scorer.measures(np.arange(scorer.size))["score"]
    assert scorer.random_search_expected(1) == pytest.approx(score.mean())
    best = scorer.h_search == np.nanmax(scorer.h_search)
    assert scorer.random_search_expected(scorer.size) == pytest.approx(score[best].mean())
    # 40 architectures, search values with ties, a score that follows them loosely.
    rng = np.random.default_rng(0)
    scorer.h_search = rng.integers(0, 12, 40).astype(float)
    scorer.h = scorer.h_search / 12.0 + rng.uniform(0.0, 0.5, 40)
    scorer.h_max = float(scorer.h.max())
    scores = 100.0 * scorer.h / scorer.h_max
    k, trials = 7, 40_000
    picks = np.argsort(rng.uniform(size=(trials, 40)), axis=1)[:, :k]
    found = picks[np.arange(trials), np.argmax(scorer.h_search[picks], axis=1)]  # first drawn among ties
    monte_carlo = scores[found]
    expected = scorer.random_search_expected(k)
    assert abs(expected - monte_carlo.mean()) < 4.0 * monte_carlo.std() / np.sqrt(trials)
    assert expected > scores.mean() + 5.0  # the search metric's order matters here


def test_reproduce_figs45_random_search_runs_match_the_expectation(tiny_tables):
    """The script's own random-search runs (200 seeds) average to the closed form."""
    script = load_script("reproduce_figs45")
    bench = natsbench_gym.load_benchmark("topology", tiny_tables)
    jobs = [script.Job("random", "predefined", "accuracy", "cifar100", seed, 10, 200, "valid", str(tiny_tables))
            for seed in range(200)]
    rows = script.score_runs([script.run_job(job) for job in jobs], str(tiny_tables))
    scores = np.array([r["score"] for r in rows if r["evaluations"] == 10])
    expected = script.Scorer(bench, "accuracy", "cifar100").random_search_expected(10)
    assert abs(scores.mean() - expected) < 4.0 * scores.std(ddof=1) / np.sqrt(scores.size)


def test_reproduce_figs45_search_score_reads_the_search_accuracy(random_metrics_bench):
    """The search score is h on the accuracy the search read: 100 for the validation-best cell, and
    the score itself when the search read test accuracy (validation and test are independent here)."""
    script = load_script("reproduce_figs45")
    bench = random_metrics_bench
    valid = script.Scorer(bench, "accuracy", "cifar100", search_accuracy="valid")
    best = int(np.nanargmax(script.space_values(bench, "accuracy", "cifar100", 200, "valid")))
    assert valid.measures(np.array([best]))["search_score"][0] == pytest.approx(100.0)
    test = script.Scorer(bench, "accuracy", "cifar100", search_accuracy="test")
    m = test.measures(np.arange(test.size))
    np.testing.assert_allclose(m["search_score"], m["score"])
    assert not np.allclose(valid.measures(np.arange(valid.size))["search_score"], m["score"])


def test_reproduce_figs45_front_hypervolume(random_metrics_bench):
    """The whole space and its non-dominated set score 100 %; more architectures never score less; a
    dominated one adds nothing; the objectives are those the benchmark has."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    script = load_script("reproduce_figs45")
    fronts = script.FrontScorer(random_metrics_bench, "cifar100")
    assert fronts.objectives == ("test_accuracy", "params", "flops", "latency")
    n = fronts.losses.shape[0]
    assert fronts.score(range(n)) == pytest.approx(100.0)
    front = NonDominatedSorting().do(fronts.losses, only_non_dominated_front=True)
    assert fronts.score(front) == pytest.approx(100.0)
    rng = np.random.default_rng(0)
    sample = rng.choice(n, 50, replace=False).tolist()
    scores = [fronts.score(sample[:k]) for k in range(1, 51)]
    assert all(0.0 < a <= b + 1e-9 for a, b in zip(scores, scores[1:], strict=False)) and scores[-1] < 100.0
    best = int(np.argmin(fronts.losses.sum(axis=1)))
    worse = int(np.flatnonzero((fronts.losses >= fronts.losses[best]).all(axis=1) & (np.arange(n) != best))[0])
    assert fronts.score([best, worse]) == pytest.approx(fronts.score([best]))


def test_reproduce_figs45_rejects_unknown_names(tiny_tables, capsys):
    script = load_script("reproduce_figs45")
    with pytest.raises(SystemExit):
        script.main(["--algos", "re,nsga2", "--data", str(tiny_tables)])
    assert "unknown algorithm 'nsga2'" in capsys.readouterr().err
