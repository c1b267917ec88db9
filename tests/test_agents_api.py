"""The agents' shared API: agents by name (``make_agent``), typed errors for bad settings, the one
``info`` -> ``Evaluation`` conversion and the one search logger of every agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import natsbench_gym
from agents import AGENTS, agent_settings, make_agent
from agents.base import SearchBudget, SearchResult, TensorBoardCallback, evaluate_encoding, evaluation_from_info
from agents.errors import (
    AgentConfigError,
    EmptyResultError,
    EpisodeError,
    InfeasibleSearchError,
    SettingTypeError,
    UnknownSettingError,
)
from agents.evolution import PersonalizedEvolution, RegularizedEvolution
from agents.lemonade import LEMONADE
from agents.personalization import Personalization
from agents.proposals import sample_architecture
from natsbench_gym.errors import NATSBenchGymError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_topology(tiny_tables):
    return natsbench_gym.load_benchmark("topology", tiny_tables)


@pytest.fixture
def make_env(tiny_topology):
    def make(**kwargs):
        return gym.make("NATSBench-Topology-v0", benchmark=tiny_topology, budget=200, **kwargs)

    return make


# --- agents by name ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["random", "re", "lemonade", "monas", "ppo", "a2c", "maskable_ppo"])
def test_make_agent_builds_each_registered_agent_with_its_class_defaults(name):
    agent = make_agent(name, seed=3)
    assert agent.name == name and agent.seed == 3
    assert isinstance(agent, AGENTS[name].load())
    for setting, default in agent_settings(name).items():
        if setting in ("seed", "personalization", "cheap_objectives", "num_proposals"):
            continue
        assert getattr(agent, setting) == default, setting


def test_make_agent_passes_settings_and_gives_the_same_search_as_the_class(make_env):
    by_name = make_agent("re", population_size=6, sample_size=3, seed=1).search(make_env(), 30)
    direct = RegularizedEvolution(population_size=6, sample_size=3, seed=1).search(make_env(), 30)
    assert [e.index for e in by_name.history] == [e.index for e in direct.history]
    agent = make_agent("re_personalized", personalization=Personalization(judge=lambda pairs, rng=None: []))
    assert isinstance(agent, PersonalizedEvolution)
    assert agent_settings("re") == {"population_size": 10, "sample_size": 5, "seed": None, "personalization": None}


def test_make_agent_rejects_bad_names_and_settings_with_typed_errors():
    with pytest.raises(UnknownNameError, match="unknown agent 'RE'; did you mean 're'"):
        make_agent("RE")
    with pytest.raises(UnknownNameError, match="expected one of: random, re, re_personalized, lemonade, monas, ppo"):
        make_agent("evolution")
    with pytest.raises(UnknownSettingError, match="agent 're' takes no setting 'sample'; did you mean 'sample_size'"):
        make_agent("re", sample=3)
    with pytest.raises(TypeError, match="agent 'lemonade' takes no setting 'personalization'"):
        make_agent("lemonade", personalization=None)  # LEMONADE has no learned-metric variant
    with pytest.raises(AgentConfigError, match="agent 'ppo' fixes algo='ppo', got algo='a2c'"):
        make_agent("ppo", algo="a2c")
    with pytest.raises(AgentConfigError, match="agent 're_personalized' needs personalization="):
        make_agent("re_personalized")
    with pytest.raises(UnknownSettingError, match="agent 'ppo' takes no setting 'learning_rat'; did you mean 'learning_rate'"):
        make_agent("ppo", learning_rat=1e-3)  # the SB3 agent checks SB3's own arguments
    with pytest.raises(AgentConfigError, match="sample_size must be in 1..population_size=4, got 5"):
        make_agent("re", population_size=4, sample_size=5)


def test_naming_a_light_agent_does_not_import_torch():
    code = (
        "import sys; from agents import make_agent, agent_settings\n"
        "[make_agent(n, seed=0) for n in ('random', 're', 'lemonade')]; agent_settings('re')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "make_agent('monas'); assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --- typed errors ----------------------------------------------------------------------------------------
def _judge(pairs, rng=None):
    return []


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: SearchBudget(evaluations=None, train_time=None), AgentConfigError, "needs evaluations=..., train_time=... or both"),
    (lambda: SearchBudget(evaluations=0), AgentConfigError, "evaluations must be >= 1, got 0; use None for a time budget"),
    (lambda: SearchBudget(train_time=-1.0), AgentConfigError, r"train_time must be > 0 seconds, got -1.0"),
    (lambda: SearchBudget.parse("100"), SettingTypeError, "budget must be a SearchBudget or a number of evaluations, got '100'"),
    (lambda: RegularizedEvolution(0), AgentConfigError, "population_size must be >= 1, got 0"),
    (lambda: PersonalizedEvolution(None), AgentConfigError, "needs a Personalization, got None"),
    (lambda: LEMONADE(num_children=5, num_proposals=3), AgentConfigError, "num_proposals must be >= num_children=5, got 3"),
    (lambda: LEMONADE(bandwidth=0.0), AgentConfigError, "bandwidth must be > 0"),
    (lambda: LEMONADE(num_proposals=20, cheap_objectives=("train_time",)), AgentConfigError,
     "train_time needs training; drop it from cheap_objectives or use num_proposals=None"),
    (lambda: Personalization(_judge, num_comparisons=0), AgentConfigError, "num_comparisons must be >= 1, got 0"),
    (lambda: Personalization(_judge, num_architectures=1), AgentConfigError, "num_architectures must be >= 2 to form a pair, got 1"),
    (lambda: make_agent("monas", temperature=0.0), AgentConfigError, "temperature must be > 0, got 0.0"),
    (lambda: make_agent("monas", baseline_decay=1.0), AgentConfigError, r"baseline_decay must be in \[0, 1\), got 1.0"),
    (lambda: make_agent("monas", episodes_per_update=0), AgentConfigError, "episodes_per_update must be >= 1, got 0"),
    (lambda: make_agent("ppo", episodes_per_update=0), AgentConfigError, "episodes_per_update must be >= 1, got 0"),
    (lambda: make_agent("monas", reward_shaping="quantile"), UnknownNameError, "unknown reward_shaping 'quantile'"),
    (lambda: SearchResult([], "x").best, EmptyResultError, "evaluated no architecture"),
])
def test_bad_agent_settings_raise_typed_errors_naming_the_value(make, error, match):
    with pytest.raises(error, match=match) as caught:
        make()
    assert isinstance(caught.value, NATSBenchGymError) and isinstance(caught.value, (ValueError, TypeError))


def test_run_time_errors_are_typed_too(make_env, tiny_topology):
    from agents.sb3 import make_sb3_agent

    with pytest.raises(AgentConfigError, match="env_kwargs is only used when env is an id"):
        make_sb3_agent("ppo", make_env(), env_kwargs={"dataset": "cifar100"})
    with pytest.raises(EpisodeError, match="did not terminate after the 3 decisions"):
        evaluate_encoding(make_env(), (1, 2, 3))
    noisy = make_env()
    noisy.unwrapped.noise = True
    with pytest.raises(AgentConfigError, match="on a noisy env"):
        RegularizedEvolution(4, 2, seed=0).search(noisy, SearchBudget(10, count_repeats=False))
    env = make_env(forbidden_ops=("none",))
    env.unwrapped.is_feasible = lambda arch: False  # a constraint nothing meets
    with pytest.raises(InfeasibleSearchError, match="no feasible architecture in 10000 uniform draws"):
        sample_architecture(env, np.random.default_rng(0))


# --- one info -> Evaluation conversion, one logger ---------------------------------------------------------
def test_evaluation_from_info_is_what_every_agent_records(make_env):
    env = make_env()
    reward, info = evaluate_encoding(env, (3, 2, 4, 1, 3, 2), seed=0)
    ev = evaluation_from_info(info, 7)
    assert (ev.step, ev.arch, ev.index, ev.encoding, ev.reward) == (7, info["arch"], info["index"], (3, 2, 4, 1, 3, 2), reward)
    assert ev.metrics == {str(k): float(v) for k, v in info["metrics"].items()}
    assert ev.total_train_time == pytest.approx(env.unwrapped.total_train_time)
    result = make_agent("random", seed=0).search(make_env(), 3)
    assert evaluation_from_info(info, 1, reward=0.5).reward == 0.5
    assert all(isinstance(e.reward, float) for e in result.history)
    with pytest.raises(EpisodeError, match="lacks arch, index, reward"):
        evaluation_from_info({"metrics": {}}, 1)


def _search_scalars(run_dir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"] if tag.startswith("search/")}


def test_every_agent_logs_the_same_keys_through_one_logger(make_env, tmp_path):
    """A light agent and an SB3 agent behind TensorBoardCallback, and an SB3 model trained with
    NASCallback, write the same ``search/...`` tags (one point per evaluation for the callback)."""
    import torch

    from agents.sb3 import NASCallback, make_sb3_agent

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        re = make_agent("re", population_size=4, sample_size=2, seed=0).search(
            make_env(), 12, callback=TensorBoardCallback(tmp_path, "re"))
        make_agent("ppo", seed=0, episodes_per_update=4).search(make_env(), 12, callback=TensorBoardCallback(tmp_path, "ppo"))
        model = make_sb3_agent("ppo", make_env(), seed=0, tensorboard_log=str(tmp_path / "sb3"), n_epochs=1)
        model.learn(384, callback=NASCallback(), tb_log_name="nas")
    finally:
        torch.set_num_threads(threads)
    tags = {run: set(_search_scalars(path)) for run, path in
            [("re", tmp_path / "re"), ("ppo", tmp_path / "ppo"), ("nas", next((tmp_path / "sb3").glob("nas_*")))]}
    core = {"search/reward", "search/best_reward", "search/best_test_accuracy", "search/best_params",
            "search/evaluations", "search/total_train_time"}
    for run, names in tags.items():  # best_<metric> for each metric the best architecture has a value of
        assert core <= names and all(n in core or n.startswith("search/best_") for n in names), run
    scalars = _search_scalars(tmp_path / "re")
    assert [s.step for s in scalars["search/reward"]] == list(range(1, 13))
    assert [s.value for s in scalars["search/evaluations"]] == list(range(1, 13))
    assert scalars["search/best_reward"][-1].value == pytest.approx(max(re.rewards()))


def test_the_search_logger_writes_other_formats(make_env, tmp_path):
    import csv

    result = make_agent("random", seed=0).search(make_env(), 5, callback=TensorBoardCallback(tmp_path, "r", formats=("csv",)))
    rows = list(csv.DictReader(open(tmp_path / "r" / "progress.csv")))
    assert [float(r["search/reward"]) for r in rows] == pytest.approx(result.rewards().tolist())
    assert "search/best_arch" not in rows[0]  # text goes to TensorBoard only
